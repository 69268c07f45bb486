"""An offline-safe environment for ultralytics, set up before it is first imported.

Left alone, ultralytics writes settings to ~/.config, asks GitHub for a font when it plots training
curves, tries to pip-install missing extras, reports telemetry, and pins torch to one thread on a
2-core machine. `import_ultralytics()` prevents all of that and returns the module; every import of
ultralytics in the project goes through it.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from tools.errors import ModelLoadError
from tools.paths import cache_dir

_lock = threading.Lock()
_done = False

# ultralytics plots with these two fonts and downloads them when missing; DejaVuSans stands in for both.
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


def _find_font() -> Path | None:
    for c in _FONT_CANDIDATES:
        if Path(c).is_file():
            return Path(c)
    try:  # matplotlib (a dependency of ultralytics) ships DejaVuSans too
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return p if p.is_file() else None
    except ImportError:
        return None


def configure() -> Path:
    """Set the environment ultralytics reads at import; returns its config dir. Idempotent."""
    cfg = Path(os.environ.get("YOLO_CONFIG_DIR") or cache_dir("ultralytics"))
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    # Never pip-install at run time. YOLO_OFFLINE is left to the caller: with internet, the default
    # COCO weights download once; offline, the download fails fast and the detector falls back.
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    fonts = cfg / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    src = _find_font()
    for name in _FONT_NAMES:
        if src is not None and not (fonts / name).exists():
            shutil.copyfile(src, fonts / name)
    return cfg


def offline() -> bool:
    return os.environ.get("YOLO_OFFLINE", "").lower() in ("1", "true", "yes")


def import_ultralytics():
    """Configure once, import ultralytics, turn off telemetry and give torch back every core."""
    global _done
    with _lock:
        configure()
        try:
            import ultralytics
            from ultralytics.utils import SETTINGS, torch_utils
        except ImportError as e:
            raise ModelLoadError(f"the detector needs ultralytics: pip install ultralytics ({e})") from None
        if not _done:
            _undo_pil_patch()
            if SETTINGS.get("sync"):
                SETTINGS.update(sync=False)
            # ultralytics uses cpu_count - 1 threads (1 on 2 cores) when it selects the CPU device.
            torch_utils.NUM_THREADS = torch_threads()
            _done = True
        restore_threads()
        return ultralytics


def _undo_pil_patch() -> None:
    """ultralytics replaces PIL.Image.open process-wide with a wrapper that, offered a file that is not an
    image, tries to install and import pi-heif; without it every "not an image" becomes an ImportError
    about pi_heif. We hand PIL images to ultralytics, so its HEIF support is not needed: put PIL back."""
    from PIL import Image
    from ultralytics.utils import patches

    if getattr(patches, "_image_open", None) is not None and Image.open is getattr(
        patches, "image_open", None
    ):
        Image.open = patches._image_open


def torch_threads() -> int:
    """Every core, unless GROUNDED_VLM_TORCH_THREADS says otherwise (on a machine shared with other jobs,
    one thread that is not preempted mid-barrier can beat two that are)."""
    n = int(os.environ.get("GROUNDED_VLM_TORCH_THREADS") or os.cpu_count() or 1)
    # More torch threads than OpenMP allows deadlocks training (measured: OMP_THREAD_LIMIT=1 + 2 threads).
    limit = os.environ.get("OMP_THREAD_LIMIT", "")
    return min(n, int(limit)) if limit.isdigit() and int(limit) > 0 else n


def restore_threads() -> None:
    """Undo ultralytics' one-thread setting (it calls torch.set_num_threads when it picks the CPU)."""
    import torch

    n = torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
