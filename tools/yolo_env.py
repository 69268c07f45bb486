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
            if SETTINGS.get("sync"):
                SETTINGS.update(sync=False)
            # ultralytics uses cpu_count - 1 threads (1 on 2 cores) when it selects the CPU device.
            torch_utils.NUM_THREADS = torch_threads()
            _done = True
        restore_threads()
        return ultralytics


def torch_threads() -> int:
    """Every core, unless GROUNDED_VLM_TORCH_THREADS says otherwise (on a machine shared with other jobs,
    one thread that is not preempted mid-barrier can beat two that are)."""
    return int(os.environ.get("GROUNDED_VLM_TORCH_THREADS") or os.cpu_count() or 1)


def restore_threads() -> None:
    """Undo ultralytics' one-thread setting (it calls torch.set_num_threads when it picks the CPU)."""
    import torch

    n = torch_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
