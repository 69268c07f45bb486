"""OCR that reads documents and scene text (signs on busy photos) with two engines, as word/line/block evidence.

By default (`engine="auto"`) the neural engine (PP-OCRv4 via rapidocr-onnxruntime, `tools.ocr_rapid`)
and Tesseract both read the image and their readings are fused (`tools.ocr_fuse`): every word keeps the
engine that read it, its confidence, and the other engine's reading where they disagree. The reading is
full recall whatever the question: `mode` only hints which engine leads, it never drops a line the
neural detector found. `engine="tesseract"` is the multi-pass Tesseract reader below on its own,
`engine="rapid"` the neural engine on its own.

One pass of Tesseract reads a clean page well and a photo badly: a sign's light letters on a coloured
plate, surrounded by windows and leaves, come back as nothing or as junk. So the tool runs several passes
in a reading frame and merges them:

- frame: the image is deskewed (projection profile of letter blobs) and, when the page pass reads little
  or reads sideways, turned upright by quarter turns as OSD (orientation detection) says;
- "page": the whole image in the requested or automatic page mode, upscaled only when its letters are small;
- "sparse": the whole image in sparse-text mode (psm 11), which finds scattered words anywhere;
- "region:k": text lines found from the image itself (rows of letter-shaped blobs under local thresholds,
  ranked by contrast, see `tools.ocr_image`), each cropped with a margin, upscaled to a readable height,
  binarised (Otsu on the line itself, text made dark on light, border junk cleared), levelled when its
  letters slant, and read as a block; the most text-like lines one call each, the rest in one stacked sheet.

Every reading is mapped back to original-image pixels, implausible words (junk, specks, unsure single
letters, regions that read like a facade's windows, short words standing alone) are dropped, overlapping
readings are de-duplicated keeping the more confident one, and lines and blocks are rebuilt geometrically
in the reading frame (`tools.ocr_layout`), so a receipt's right-aligned prices stay on their item lines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from tools.base import Tool
from tools.errors import BadInputError, ToolError
from tools.evidence import Finding, clip_box
from tools.images import ImageRef
from tools.ocr_fuse import FuseConfig, tesseract_on_lines
from tools.ocr_image import Frame, binarize, char_height, estimate_skew, text_regions
from tools.ocr_layout import (
    OcrWord,
    clean_text,
    drop_stray_short_words,
    merge,
    plausible,
    to_findings,
)
from tools.ocr_pipeline import fit, read_engines, read_tiled, tiles
from tools.ocr_rapid import RapidConfig, RapidEngine
from tools.ocr_words import join_across_boxes

Box = tuple[float, float, float, float]


# Added to a reading's confidence when passes disagree about the same spot: the page pass sees whole
# lines, a region pass a cleaned-up crop, the sparse pass only isolated word fragments.
PASS_BONUS = {"page": 0.1, "region": 0.08, "sparse": 0.0}


@dataclass
class OCRConfig:
    """Knobs of the multi-pass reader (defaults measured on the rendered sign/receipt sets)."""

    max_regions: int = 10  # text-like regions read per image
    region_text_px: int = 48  # a region crop is scaled so its text line is about this many pixels tall
    max_upscale: float = 4.0  # never enlarge a crop more than this
    sheet_gap_px: int = 24  # white space between the region crops stacked into one sheet
    region_min_conf: float = 0.6  # a word read in a region crop needs at least this confidence
    region_min_median_conf: float = 0.8  # and its region's words a median confidence of at least this
    solo_regions: int = 4  # the most text-like regions are read one call each; the rest share one sheet
    small_char_px: float = 9.0  # the page pass upscales images whose typical letter (median blob) is shorter
    page_char_px: float = 11.0  # ... to make that letter about this tall
    osd_min_conf: float = 2.0  # OSD orientation confidence needed before a page is rotated
    sparse_max_side: int = 1280  # the sparse pass and OSD see big photos shrunk to this longer side
    sparse_min_len: int = 3  # the sparse pass hallucinates short words on textures; it needs this many chars
    sparse_min_conf: float = 0.75  # and at least this confidence
    call_timeout_s: float = 20.0  # a single Tesseract call is killed after this
    read_enough_words: int = 8  # a page pass reading this many confident words needs no OSD
    rapid: RapidConfig = field(default_factory=RapidConfig)  # the neural engine
    fuse: FuseConfig = field(default_factory=FuseConfig)  # how the two engines' readings are combined


class _ThreadLimitedEnv(Mapping):
    """os.environ plus OMP_THREAD_LIMIT=1 for Tesseract only (2-3x faster on small images, and it
    leaves the cores to the other tools); the process's own environment is left untouched."""

    def __getitem__(self, k):
        if k == "OMP_THREAD_LIMIT" and k not in os.environ:
            return "1"
        return os.environ[k]

    def __iter__(self) -> Iterator[str]:
        yield from os.environ
        if "OMP_THREAD_LIMIT" not in os.environ:
            yield "OMP_THREAD_LIMIT"

    def __len__(self) -> int:
        return len(os.environ) + ("OMP_THREAD_LIMIT" not in os.environ)


class OCRTool(Tool):
    name = "ocr"
    description = (
        "Read the text in an image (documents, receipts, screenshots, signs in photos). Returns words, "
        "lines and blocks with their boxes and confidences. Give `region` to read only part of the image."
    )
    inputs = {
        "region": {"type": "box", "description": "Only read this part of the image.", "default": None},
        "psm": {
            "type": "integer",
            "description": "Tesseract page segmentation mode for the page pass (default: automatic).",
            "default": None,
            "minimum": 0,
            "maximum": 13,
        },
        "lang": {
            "type": "string",
            "description": "Tesseract language(s), e.g. 'eng' or 'eng+deu'.",
            "default": "eng",
        },
        "min_confidence": {
            "type": "number",
            "description": "Drop words read with less confidence than this (0..1).",
            "default": 0.5,
            "minimum": 0.0,
            "maximum": 1.0,
        },
        "mode": {
            "type": "string",
            "description": (
                "A hint: 'document' (pages, receipts) or 'scene' (text in photos); 'auto' decides. "
                "With engine 'auto' it only chooses which engine leads; no text is dropped."
            ),
            "default": "auto",
            "enum": ["auto", "document", "scene"],
        },
        "engine": {
            "type": "string",
            "description": "'auto' fuses the neural engine and Tesseract; or one of them alone.",
            "default": "auto",
            "enum": ["auto", "tesseract", "rapid"],
        },
    }
    version = "9"  # bump when readings change, so cached results from older versions are not reused
    evidence_prefix = "ocr"
    timeout_s = 30.0

    def __init__(self, config: OCRConfig | None = None):
        super().__init__()
        self.config = config or OCRConfig()
        self._languages: set[str] = set()

    def setup(self) -> None:
        try:
            import pytesseract
        except ImportError:
            raise ToolError(self.name, "pytesseract is not installed: pip install pytesseract") from None
        pytesseract.pytesseract.environ = _ThreadLimitedEnv()
        try:
            self._languages = set(pytesseract.get_languages(config=""))
        except pytesseract.TesseractNotFoundError:
            raise ToolError(
                self.name, "the tesseract program is not installed (apt-get install tesseract-ocr)"
            ) from None

    def forward(
        self,
        image: ImageRef,
        region=None,
        psm=None,
        lang="eng",
        min_confidence=0.5,
        mode="auto",
        engine="auto",
    ):
        missing = [part for part in lang.split("+") if part not in self._languages]
        if missing and engine != "rapid":
            raise BadInputError(
                f"tool ocr: language(s) {missing} not installed; available: {sorted(self._languages)}"
            )
        im = image.image
        ox, oy = 0.0, 0.0
        if region is not None:
            x0, y0, x1, y1 = (round(v) for v in clip_box(region, im.size))
            if x1 - x0 < 2 or y1 - y0 < 2:
                raise BadInputError(
                    f"tool ocr: region {list(region)} lies outside the {im.size[0]}x{im.size[1]} image"
                )
            im, ox, oy = im.crop((x0, y0, x1, y1)), float(x0), float(y0)
        deadline = time.monotonic() + self.timeout_s * 0.9
        rapid = None
        if engine != "tesseract":
            try:
                rapid = RapidEngine(self.config.rapid, deadline)
            except ToolError as e:
                if engine == "rapid":
                    raise
                rapid = e

        def read(img):  # -> (words, notes about a failed engine, whether read as a page)
            reader = _Reader(self.config, lang, deadline)
            return read_engines(engine, reader, rapid, img, psm, mode, min_confidence, self.config.fuse)

        spans = tiles(im.size, self.config.rapid.det_side)  # a long strip: read in tiles
        words, notes, dense = read_tiled(read, im, spans, self.config.rapid.det_side) if spans else read(im)
        dense = dense or mode == "document"
        # One word's pieces in several boxes become one word (a big initial letter, a hyphenated line end).
        words = join_across_boxes(words, np.asarray(im.convert("L")), self.config.fuse.words)
        shift = lambda b: (b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy)  # noqa: E731
        for w in words:
            w.box, w.parts = shift(w.box), [{**p, "box": shift(p["box"])} for p in w.parts]
        # A page's far-right prices belong to their items' lines however wide the gap; in a scene two
        # signs side by side are two lines.
        found = to_findings(words, self.config.fuse.page_gap_heights if dense else 25.0)
        # An engine that failed is said once, as a note (the other engine's reading stands).
        found += [Finding("note", n, 0.0, None, {"about": "ocr engine"}) for n in notes]
        return found


class _TesseractFailed(ToolError):
    """Tesseract refused or crashed on an image ("Image too large"): the other engine's reading stands."""


class _OutOfTime(Exception):
    """The request's deadline passed between passes; what was read so far is returned."""


class _Reader:
    """One OCR request: finds the reading frame, runs the passes within a deadline, merges what they read."""

    def __init__(self, cfg: OCRConfig, lang: str, deadline: float):
        self.cfg, self.lang, self.deadline = cfg, lang, deadline
        self.frame: Frame | None = None  # the reading frame the last `read` used

    def read_lines(self, gray, lines, fuse_cfg: FuseConfig) -> list[OcrWord]:
        """Tesseract's reading of lines another engine detected (one call, see `tesseract_on_lines`)."""
        try:
            return tesseract_on_lines(
                lambda img, psm: self._tesseract(img, psm, "line", Frame(img.size)), gray, lines, fuse_cfg
            )
        except _OutOfTime:
            return []

    def read(self, gray, psm: int | None, mode: str, min_conf: float) -> list[OcrWord]:
        frame, img = Frame(gray.size), gray
        if psm is None and mode != "scene":
            frame, img = frame.then(img, estimate_skew(gray))
        words: list[OcrWord] = []
        try:
            if mode in ("auto", "document"):
                page, frame, img = self._page(frame, img, psm)
                words += page
            if mode in ("auto", "scene"):
                words += self._sparse(frame, img)
                # Only the page pass's readings count as already read: the sparse pass splits "12.50" in two.
                done = [w for w in words if w.conf >= 0.85 and w.source.startswith("page")]
                words += self._regions(frame, img, done)
        except _OutOfTime:
            if not words:
                raise ToolError("ocr", "ran out of time before Tesseract read anything") from None
        self.frame = frame
        keep = []
        for w in words:
            w.text = clean_text(w.text, keep_hyphen=True)
            sparse, region = w.source == "sparse", w.source.startswith("region")
            need = max(
                min_conf, self.cfg.sparse_min_conf if sparse else self.cfg.region_min_conf if region else 0
            )
            if plausible(w, need, min_len=self.cfg.sparse_min_len if sparse else 1):
                keep.append(w)
        return drop_stray_short_words(
            merge(keep, bonus=PASS_BONUS), suspect=lambda w: not w.source.startswith("page") or w.conf < 0.7
        )

    # ---- passes ----------------------------------------------------------------------------------

    def _page(self, frame: Frame, img, psm: int | None):
        """The whole image as a page; a page that reads poorly is asked for its orientation (OSD)."""
        page_psm = 3 if psm is None else psm
        words = self._read_page(frame, img, page_psm, "page")
        confident = [w for w in words if w.conf >= 0.8 and len(w.text.strip()) >= 2]
        # Tesseract reads some sideways pages word by word, but its boxes then stand upright (taller than
        # wide) and the lines are lost: that too calls for OSD.
        sideways = sum(w.fbox[3] - w.fbox[1] > w.fbox[2] - w.fbox[0] for w in confident if len(w.text) >= 3)
        if psm is not None or (
            len(confident) >= self.cfg.read_enough_words and sideways < len(confident) / 2
        ):
            return words, frame, img
        rotate = self._osd(img)
        if rotate:
            turned_frame, turned = frame.then(img, -rotate)
            words2 = self._read_page(turned_frame, turned, page_psm, f"page@{rotate}")
            # A sideways page Tesseract did read word by word still has its lines only in the turned frame.
            keep = 0.8 if sideways >= len(confident) / 2 else 1.0
            if sum(w.conf for w in words2) > keep * sum(w.conf for w in words):
                return words2, turned_frame, turned
        return words, frame, img

    def _read_page(self, frame: Frame, img, psm: int, source: str) -> list[OcrWord]:
        from PIL import Image

        # Upscale only small type: enlarging text that is already legible makes Tesseract worse.
        h = char_height(img)
        scale = (
            1.0
            if h >= self.cfg.small_char_px
            else min(self.cfg.max_upscale, self.cfg.page_char_px / max(h, 4))
        )
        if scale > 1:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        return self._tesseract(img, psm, source, frame, lambda b: tuple(v / scale for v in b))

    def _sparse(self, frame: Frame, img) -> list[OcrWord]:
        # Scattered scene text is large enough to survive a downscale of a big photo, and the pass's cost
        # grows with the pixel count.
        small, s = fit(img, self.cfg.sparse_max_side)
        return self._tesseract(small, 11, "sparse", frame, lambda b: tuple(v / s for v in b))

    def _regions(self, frame: Frame, img, done: list[OcrWord]) -> list[OcrWord]:
        """Text-like regions, each cropped with a margin, upscaled to a readable height, levelled when its
        letters run at a slant, binarised, and read as a block."""
        from PIL import Image

        pieces = []  # (prepared crop, crop pixels -> frame pixels)
        for (x0, y0, x1, y1), angle in text_regions(img, self.cfg.max_regions, skip=done):
            h = y1 - y0
            m = max(4, round(0.3 * h))
            cx0, cy0 = max(0, x0 - m), max(0, y0 - m)
            crop = img.crop((cx0, cy0, min(img.width, x1 + m), min(img.height, y1 + m)))
            scale = min(self.cfg.max_upscale, max(1.0, self.cfg.region_text_px / max(1, min(h, 80))))
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.LANCZOS)
            inner = tuple(round(v * scale) for v in (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0))
            # Binarise before levelling: the border clearing needs the crop's own edges, not rotated corners.
            level, crop = Frame(crop.size).then(binarize(crop, inner), angle)

            def to_frame(b, level=level, s=scale, dx=cx0, dy=cy0):
                b = level.to_original(b)
                return (b[0] / s + dx, b[1] / s + dy, b[2] / s + dx, b[3] / s + dy)

            pieces.append((crop, to_frame))
        out = []
        solo, rest = pieces[: self.cfg.solo_regions], pieces[self.cfg.solo_regions :]
        for k, (p, to_frame) in enumerate(solo):
            out += self._tesseract(p, 6, f"region:{k}", frame, to_frame)
        if rest:
            out += self._sheet(frame, rest, first=len(solo))
        return self._credible(out)

    def _sheet(self, frame: Frame, pieces: list, first: int) -> list[OcrWord]:
        """Less likely regions stacked into one sheet (white gaps between them) and read in one call:
        each call pays ~0.1 s to start Tesseract and load its model. Words map back through their crop."""
        from PIL import Image

        gap = self.cfg.sheet_gap_px
        width = max(p.width for p, _ in pieces) + 2 * gap
        sheet = Image.new("L", (width, sum(p.height + gap for p, _ in pieces) + gap), 255)
        tops, y = [], gap
        for p, _ in pieces:
            sheet.paste(p, (gap, y))
            tops.append(y)
            y += p.height + gap
        out = []
        for w in self._tesseract(sheet, 6, "sheet", Frame(sheet.size)):
            cy = (w.fbox[1] + w.fbox[3]) / 2
            k = max((i for i, t in enumerate(tops) if t - gap / 2 <= cy), default=0)
            b = w.fbox
            fbox = pieces[k][1]((b[0] - gap, b[1] - tops[k], b[2] - gap, b[3] - tops[k]))
            box = clip_box(frame.to_original(fbox), frame.size)
            out.append(OcrWord(w.text, w.conf, box, f"region:{first + k}", fbox))
        return out

    def _credible(self, words: list[OcrWord]) -> list[OcrWord]:
        """Keep the words of regions that read like text: a facade's windows read as a page of short,
        middling-confidence "words" ("an", "ee", "oe"); a sign reads as a few confident ones."""
        by_region: dict[str, list[OcrWord]] = {}
        for w in words:
            if any(c.isalnum() for c in w.text):
                by_region.setdefault(w.source, []).append(w)
        out = []
        for ws in by_region.values():
            confs = sorted(w.conf for w in ws)
            if confs[len(confs) // 2] >= self.cfg.region_min_median_conf:
                out += ws
        return out

    # ---- Tesseract -------------------------------------------------------------------------------

    def _call(self, fn, *args, **kw):
        left = self.deadline - time.monotonic()
        if left <= 0.2:
            raise _OutOfTime
        limit = min(self.cfg.call_timeout_s, left)
        import pytesseract

        try:
            return fn(*args, timeout=limit, **kw)
        except pytesseract.TesseractError as e:  # "Image too large", a crash: the other engine stands
            raise _TesseractFailed("ocr", " ".join(str(e.message or e).split())[:200]) from None
        except RuntimeError as e:  # pytesseract's timeout
            if "timeout" in str(e).lower():
                raise ToolError("ocr", f"Tesseract did not finish within {limit:.1f} s") from None
            raise

    def _tesseract(self, img, psm: int, source: str, frame: Frame, to_frame=None) -> list[OcrWord]:
        """Read `img`; `to_frame` maps its pixel boxes into the frame image (identity when it is the frame
        image itself), and the frame maps them on to the original image."""
        import pytesseract

        data = self._call(
            pytesseract.image_to_data,
            img,
            lang=self.lang,
            config=f"--psm {psm}",
            output_type=pytesseract.Output.DICT,
        )
        out = []
        for text, conf, x, y, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        ):
            if not str(text).strip() or float(conf) < 0:
                continue
            fbox = (float(x), float(y), float(x + w), float(y + h))
            if to_frame is not None:
                fbox = to_frame(fbox)
            box = clip_box(frame.to_original(fbox), frame.size)
            out.append(OcrWord(str(text).strip(), float(conf) / 100.0, box, source, fbox))
        return out

    def _osd(self, img) -> int:
        """Degrees (90/180/270, clockwise) OSD says the page must turn to be upright; 0 when unsure."""
        import pytesseract

        try:
            osd = self._call(
                pytesseract.image_to_osd,
                fit(img, self.cfg.sparse_max_side)[0],
                config="--psm 0",
                output_type=pytesseract.Output.DICT,
            )
        except _TesseractFailed:
            return 0  # "too few characters": nothing to orient by
        rotate = int(osd.get("rotate", 0)) % 360
        return rotate if rotate and float(osd.get("orientation_conf", 0)) >= self.cfg.osd_min_conf else 0
