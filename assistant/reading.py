"""The lines of text an image holds, and where they are: the reading primitives of the answer pipeline.

OCR reads everything it can once per image; this module gives the pipeline's later steps (candidates,
ranking) that reading as lines:

- readings of the same region are reconciled first: where OCR and a zoomed re-read disagree about one
  line, the fuller reading (the one whose words contain the other's), else the more confident, stands,
  whichever tool ran last;
- lines are related by layout: on the same row (`beside`), under one another (`below`, `above`), in one
  block of text (`blocks`: a sign, a paragraph), under a form's header (`under_label`);
- the words of a question that may label its answer in the text (`label_words`), and the lines that
  carry them (`has_label`);
- the qualifiers of a question restrict lines (`qualify`: "at the top", "the small text", "in red"), and
  when no line satisfies them the reply says so: it never falls back to other lines;
- a sign's own text is its large, central, confident lines (`main_text`);
- how sure a reading is (`doubt`): a line only one OCR engine read, below 0.80, is not stated as fact.
"""

from __future__ import annotations

import re

from assistant import roles, verify
from tools.evidence import Evidence, center_inside, near

# An amount no label points at is an amount only when its currency is marked.
MARKED_MONEY = r"(?:[$€£¥￥₹₩]|\b(?:rm|usd|eur|gbp|sgd|rmb|s\$)\s?)\s?\d{1,3}(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?"
MARKED_MONEY += r"|(?<![\d.,])\d+(?:[,.' ]\d{3})*(?:[.,]\d{1,2})?\s?(?:元|圆|yuan|rmb|dollars?|euros?)"
# A named thing the text does not carry unless a label says so ("this beach") is asked about without
# pointing at any text; these words point at text.
_TEXT_CUES = r"\b(say|says|written|write|printed|print|listed|shown|show|text|sign|label|logo|banner|board|poster|receipt|bill|invoice|ticket|pass|page|heading|title|caption|letters?|word|words|read|menu|jersey|wall|plate|card|book cover)\b"  # fmt: skip
# Words that never name a label: question words, the kinds of things text is on, types and verbs.
_GENERIC_WORDS = """a an the this that these those is are was were be been of on in at to for from by with and or it its what
    which who whose whom how when where why does do did can could would will there here image picture photo
    shown show printed print written write listed list say says said read reads text sign label name named
    called word words letter letters appear appears mentioned mention given displayed display visible see
    receipt bill invoice ticket pass document page card paper poster banner board logo number no amount
    price cost total value type kind large big small top bottom left right middle center centre upper lower
    corner side front back above below near under over one only first last main full english according field
    much many title heading headline caption"""
_GENERIC = set(_GENERIC_WORDS.split())
_COLOURS = set(verify.COLOURS)


def label_words(question: str) -> list[str]:
    """Words of the question that may label the answer in the text: content words, words written in
    capitals ("the TO field") and text in other scripts, without question words, types, places on the
    image, colours and the kinds of things text is on."""
    caps = [w.lower() for w in re.findall(r"\b[A-Z]{2,}\b", question) if w != "I"]
    # A name the question already knows ("which town is Epping twinned with") is its subject, not a label.
    names = {w.lower() for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]+[A-Za-z]*", question)}
    other = re.findall(r"[^\x00-\u024f\s\W]{2,}", question)  # CJK and other scripts, as written
    words = [w for w in re.findall(r"[a-z][a-z'-]+", question.lower()) if len(w) >= 3]
    words = [w.strip("'s") if w.endswith("'s") else w for w in words]
    keep = [
        w for w in words
        if w not in _GENERIC and w not in _COLOURS and w not in names and not re.fullmatch(_TYPE_ANY, w)
    ]  # fmt: skip
    return list(dict.fromkeys(caps + keep + other))


def named_words(question: str) -> list[str]:
    """Names the question already knows ("Epping", "Subchapter"): its subject, which may label the answer
    where its other words label nothing ("the title of Subchapter A")."""
    return [w.lower() for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]+[A-Za-z]*", question)]


_TYPE_ANY = r"e-?mail|website|url|phone|telephone|percent|percentage|date|day|volume|content|weight|dollars?|paid|pay|digits?|numbers?|code|score"  # fmt: skip


# ---- how sure a reading is ------------------------------------------------------------------------

# A reading that only one OCR engine made, with less confidence than this, is not shown as fact: it is
# shown marked as uncertain (`doubt`). Two engines agreeing on a line is independent confirmation
# whatever their scores; a lone reading below 0.8 is where the misreads of scene text are (a logo's
# letters, a stylised word, a cut-off line), the level OCR systems commonly treat as unreliable.
# Words where the engines disagree are not doubted by themselves: fusion picks the better reading there,
# and it is usually right (`tools.ocr_fuse`).
SURE_READING = 0.80


def engines(e: Evidence) -> set[str]:
    """The OCR engines that made this reading (fusion records them on lines, and one engine on words)."""
    return set(e.extra.get("engines") or ([e.extra["engine"]] if e.extra.get("engine") else []))


def doubt(e: Evidence) -> str:
    """Why this OCR reading (a word or a line) is uncertain, in words for the user; "" when it is not."""
    if e.tool not in ("ocr", "zoom") or e.kind not in ("word", "line") or e.confidence >= SURE_READING:
        return ""
    engines_ = engines(e)
    if len(engines_) >= 2:
        return ""
    who = f"only {next(iter(engines_))} read it" if engines_ else "one OCR engine read it"
    return f"{who}, with confidence {e.confidence:.2f}"


def doubts(readings: list[Evidence]) -> str:
    """Why these readings are uncertain, in one phrase (the least sure one speaks for several)."""
    unsure = [e for e in readings if doubt(e)]
    if len(unsure) <= 1:
        return doubt(unsure[0]) if unsure else ""
    return f"one OCR engine alone read each, with confidence {min(e.confidence for e in unsure):.2f} at least"


# ---- the lines -----------------------------------------------------------------------------------


def text_lines(evidence: list[Evidence]) -> list[Evidence]:
    """OCR and zoom lines worth reading, one reading per region, in reading order per image."""
    lines = [e for e in evidence if e.kind == "line" and e.tool in ("ocr", "zoom") and meaningful(e)]
    groups: list[list[Evidence]] = []
    for e in lines:
        for g in groups:
            if any(_same_region(e, o) for o in g):
                g.append(e)
                break
        else:
            groups.append([e])
    kept = [_reconcile(g) for g in groups]
    return sorted(kept, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))


def meaningful(e: Evidence) -> bool:
    """Not texture read as letters ("aa a", "|l"): a word of 3+ letters or digits, or a sure short word."""
    tokens = [re.sub(r"\W", "", t) for t in e.text.split()]
    return any(len(t) >= 3 for t in tokens) or (e.confidence >= 0.9 and any(len(t) >= 2 for t in tokens))


def _same_region(a: Evidence, b: Evidence) -> bool:
    """Two readings of one line: boxes sharing most of the smaller one (nearly all of it for one tool's
    lines, which only overlap that much when two calls read the same line)."""
    if a.image != b.image or not a.box or not b.box:
        return False
    ix = min(a.box[2], b.box[2]) - max(a.box[0], b.box[0])
    iy = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    if ix <= 0 or iy <= 0:
        return False
    small = min((a.box[2] - a.box[0]) * (a.box[3] - a.box[1]), (b.box[2] - b.box[0]) * (b.box[3] - b.box[1]))
    return ix * iy >= (0.5 if a.tool != b.tool else 0.8) * max(small, 1e-9)


def _contains_words(big: str, small: str) -> bool:
    """Every word of `small` is (up to OCR errors) a word of `big`."""
    bw, sw = verify.norm(big).split(), verify.norm(small).split()
    return bool(sw) and all(any(verify.similarity(s, b) >= 0.75 for b in bw) for s in sw)


def _reconcile(group: list[Evidence]) -> Evidence:
    """The reading of a region that contains the others' words; else the most confident."""
    if len(group) == 1:
        return group[0]

    def score(e: Evidence):
        covers = sum(1 for o in group if o is not e and _contains_words(e.text, o.text))
        return (covers, e.confidence, len(verify.norm(e.text)))

    return max(group, key=score)


def height(e: Evidence) -> float:
    """A line's height in pixels (0 without a box)."""
    return (e.box[3] - e.box[1]) if e.box else 0.0


def same_row(a: Evidence, b: Evidence) -> bool:
    """Lines of one image whose vertical extents overlap by half the smaller height."""
    if a.image != b.image or not a.box or not b.box:
        return False
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    return overlap >= 0.5 * min(height(a), height(b))


def beside(line: Evidence, lines: list[Evidence]) -> list[Evidence]:
    """Lines on the same row to the right of `line`, nearest first."""
    out = [e for e in lines if e is not line and same_row(line, e) and e.box[0] >= line.box[0] + 0.5 * (line.box[2] - line.box[0])]  # fmt: skip
    return sorted(out, key=lambda e: e.box[0])


def below(line: Evidence, lines: list[Evidence], n: int = 2) -> list[Evidence]:
    """Up to `n` lines under `line` (within three line heights) that share some of its columns."""
    if not line.box:
        return []
    h = max(height(line), 1.0)
    out = [
        e for e in lines
        if e is not line and e.image == line.image and e.box and line.box[3] - 0.3 * h <= e.box[1] <= line.box[3] + 3 * h
        and min(e.box[2], line.box[2] + h) - max(e.box[0], line.box[0] - h) > 0 and not same_row(line, e)
    ]  # fmt: skip
    return sorted(out, key=lambda e: (e.box[1], e.box[0]))[:n]


def above(line: Evidence, lines: list[Evidence], n: int = 1) -> list[Evidence]:
    """Up to `n` lines over `line` (within two line heights) that share some of its columns, nearest first."""
    if not line.box:
        return []
    h = max(height(line), 1.0)
    out = [
        e for e in lines
        if e is not line and e.image == line.image and e.box and line.box[1] - 2 * h <= e.box[3] <= line.box[1] + 0.3 * h
        and min(e.box[2], line.box[2] + h) - max(e.box[0], line.box[0] - h) > 0 and not same_row(line, e)
    ]  # fmt: skip
    return sorted(out, key=lambda e: -e.box[3])[:n]


def blocks(lines: list[Evidence]) -> list[list[Evidence]]:
    """Lines grouped into blocks of text (a sign, a paragraph, a label): lines within about a line
    height of each other, per image, each block in reading order."""
    groups: list[list[Evidence]] = []
    for e in lines:
        joined = [g for g in groups if any(_near(e, o) for o in g)]
        merged = [e] + [o for g in joined for o in g]
        groups = [g for g in groups if g not in joined] + [merged]
    return [sorted(g, key=lambda e: (e.box[1] if e.box else 0, e.box[0] if e.box else 0)) for g in groups]


def block_of(line: Evidence, lines: list[Evidence]) -> list[Evidence]:
    return next((b for b in blocks(lines) if line in b), [line])


def qualify(lines: list[Evidence], role: roles.Role, evidence: list[Evidence]) -> tuple[list[Evidence], str]:
    """The lines that satisfy the question's qualifiers (position, size, ink), and "" ; or [] and what no
    line satisfied ("no text at the bottom was read"). A qualifier the layout cannot tell apart (every
    line on one row for "at the top") leaves the lines as they are."""
    from assistant import ink

    out = [e for e in lines if e.box]
    if not out:
        return lines, ""
    for where in role.where:
        axis = 1 if where in ("top", "bottom") else 0
        lo, hi = min(e.box[axis] for e in out), max(e.box[axis + 2] for e in out)
        if hi - lo < 2.2 * max(height(e) for e in out):
            continue  # one row (or one column) of text: "at the top" cannot single out a line of it

        def rel(e, axis=axis, lo=lo, hi=hi):
            return ((e.box[axis] + e.box[axis + 2]) / 2 - lo) / (hi - lo)

        keep = {"top": lambda e: rel(e) <= 0.4, "bottom": lambda e: rel(e) >= 0.6,
                "left": lambda e: rel(e) <= 0.45, "right": lambda e: rel(e) >= 0.55}[where]  # fmt: skip
        out = [e for e in out if keep(e)]
        if not out:
            return [], f"no text at the {where} was read"
    if role.size:
        tallest = max(height(e) for e in out)
        out = [
            e
            for e in out
            if (height(e) >= 0.75 * tallest if role.size == "large" else height(e) <= 0.6 * tallest)
        ]
        if not out:
            return [], f"no {role.size}er text was read than the rest"
    if role.ink:
        measured = ink.measured(out, evidence)
        if measured is None:
            return [], f"the colour of the letters ({role.ink}) was not measured"
        out = [e for e in out if e in ink.by_ink(measured, evidence, role.ink)]
        if not out:
            return [], f"no text written in {role.ink} was read"
    return out, ""


def typed_values(kind: str, text: str, at_label: bool = False) -> list[str]:
    """Values of a typed role in a text, the type's own form first ("MU 2379", then "2379")."""
    found = [m.group(0).strip() for m in re.finditer(roles.PATTERNS[kind], text, roles.flags(kind))]
    if not found and at_label and kind in roles.AT_LABEL:
        found = [m.group(0).strip() for m in re.finditer(roles.AT_LABEL[kind], text, roles.flags(kind))]
    return found


def has_label(line: Evidence, labels: list[str]) -> int:
    """How many label words the line carries (a word of 3+ letters matching up to OCR errors, or CJK text)."""
    words = verify.norm(line.text).split()
    n = 0
    for lab in labels:
        if not lab.isascii():
            n += lab in line.text
        elif any(w == lab or (len(lab) >= 4 and verify.similarity(w, lab) >= 0.85) for w in words):
            n += 1
    return n


def after_label(line: Evidence, labels: list[str]) -> str:
    """The text of a line after its last label word ("Table: A10" -> "A10")."""
    text = line.text
    end = 0
    for lab in labels:
        pattern = rf"(?<![a-z]){re.escape(lab)}(?![a-z])" if lab.isascii() else re.escape(lab)
        m = re.search(pattern, text, re.I) if len(lab) >= 2 else None
        if m:
            end = max(end, m.end())
    return text[end:].strip(" :#.-\t") if end else ""


def _words_in(line: Evidence, evidence: list[Evidence]) -> list[Evidence]:
    """The word records of a line (same tool and image, centre inside its box), left to right."""
    if not line.box:
        return []
    out = []
    for w in evidence:
        same = w.kind == "word" and w.tool == line.tool and w.image == line.image
        if same and w.box and center_inside(w.box, line.box):
            out.append(w)
    return sorted(out, key=lambda w: w.box[0])


def under_label(line: Evidence, labels: list[str], lines: list[Evidence], evidence: list[Evidence]):
    """A form's value: on a header row ("目的地 TO  FROM  GATE"), the words of the next line that sit
    under the label's column (each word goes to the header word nearest above it). (text, line) or None."""
    header = _words_in(line, evidence)
    at = [i for i, w in enumerate(header) if has_label(w, labels)]
    nxt = below(line, lines, 1)
    if not at or not nxt or len(header) < 2:
        return None
    group = {at[0]} | ({at[0] - 1} if at[0] > 0 and not header[at[0] - 1].text.isascii() else set())
    values = []
    for w in _words_in(nxt[0], evidence):
        cx = (w.box[0] + w.box[2]) / 2
        nearest = min(range(len(header)), key=lambda i: abs((header[i].box[0] + header[i].box[2]) / 2 - cx))
        if nearest in group:
            values.append(w.text)
    return (" ".join(values), nxt[0]) if values else None


# ---- choosing ------------------------------------------------------------------------------------


# A line that says where something goes ("to Harbourfront", "towards Joo Koon", "→ Exit"), not what the
# place or thing is called: a name question does not take it as the name.
_DIRECTION = re.compile(r"^\s*(?:to|towards?|for|via|bound for|[→←↑↓➔>])\s+\S|[→←➔]\s*$", re.I)


def is_direction(e: Evidence) -> bool:
    """Does the line point somewhere ("to X", "towards X", "for X", an arrow) rather than name something?"""
    return bool(_DIRECTION.search(e.text))


_EDGE_JUNK = re.compile(
    r"(https?://|www\.|\.com\b|\.net\b|\.org\b|@|©|\(c\)|copyright|shutterstock|alamy|getty)", re.I
)


def is_edge_junk(e: Evidence) -> bool:
    """A web address, a copyright or a stock-photo watermark: text at an image's edge, not its content."""
    return bool(_EDGE_JUNK.search(e.text))


def main_text(lines: list[Evidence], sizes: dict) -> list[Evidence]:
    """The text's own large, confident lines (and the lines of the same plate), in reading order."""
    lines = [e for e in lines if e.confidence >= 0.5]
    plain = [e for e in lines if not _EDGE_JUNK.search(e.text)] or lines
    if not plain:
        return []
    tallest = max((height(e) for e in plain), default=0)
    best = max(e.confidence for e in plain)
    keep = [
        e
        for e in plain
        if (not tallest or height(e) >= 0.5 * tallest) and e.confidence >= max(0.55, best - 0.3)
    ]
    for e in plain:  # a smaller line right next to a kept one is on the same plate: it belongs to the text
        if e not in keep and (not tallest or height(e) >= 0.3 * tallest) and any(_near(e, k) for k in keep):
            keep.append(e)
    return sorted(keep, key=lambda e: (e.image, e.box[1] if e.box else 0, e.box[0] if e.box else 0))[:12]


def _near(a: Evidence, b: Evidence) -> bool:
    if a.image != b.image or not a.box or not b.box:
        return False
    return near(a.box, b.box, 1.5 * max(height(a), height(b)))


def prominence(e: Evidence) -> float:
    return height(e) * (0.5 + e.confidence)


def asks_person_or_unnamed(question: str, labels: list[str]) -> bool:
    """A question about a name the text carries only if a label says so: a person, or a named thing
    ("this beach") asked about without pointing at any text."""
    q = question.lower()
    if roles.role_of(q).kind == "person":
        return True
    m = re.search(r"\bname of (?:the |this |that )?([a-z]+)", q)
    named = m.group(1) if m else ""
    return bool(named and named not in roles.ORGS | roles.PLACES and not re.search(_TEXT_CUES, q))


def why_not(question: str, evidence: list[Evidence]) -> str:
    """Why a reading question has no answer in the evidence, in words for the user."""
    role = roles.role_of(question)
    if not any(e.tool in ("ocr", "zoom") and e.kind in ("word", "line") for e in evidence):
        what = roles.NOUNS.get(role.kind) if role.typed else ""
        return (
            f"no {what} was read in the image (no text was read at all)."
            if what
            else "no text was read in the image."
        )
    labels = label_words(question)
    if asks_person_or_unnamed(question, labels):
        what = next((w for w in labels if w.isascii()), "name")
        return f"the text read in the image names no {what}."
    if role.typed:
        at = [w for w in labels if w.isascii()][:2]
        return f"no {roles.NOUNS.get(role.kind, role.kind)}{' for ' + ' '.join(at) if at else ''} was read in the image."
    return "nothing in the text read from the image answers it."
