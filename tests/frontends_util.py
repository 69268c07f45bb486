"""Helpers for the front-end tests: one loaded engine per model for the whole test run, free loopback
ports, a real uvicorn server on a thread, and small synthetic images written to disk."""

from __future__ import annotations

import socket
import threading
import time
from functools import lru_cache
from pathlib import Path

# Short answers keep the CPU tests quick; the answer text itself comes from the evidence anyway.
MAX_NEW_TOKENS = 12


@lru_cache(maxsize=2)
def engine(name: str):
    """A real local engine ("smollm2" text, "smollm2-llava" VLM), loaded once per test process."""
    from assistant.core import load_engine
    from assistant.core.config import ModelConfig

    return load_engine(ModelConfig(model=name, device="cpu"))


def assistant(name: str, trace_dir: str | Path, tools=("ocr",), engine_obj=None, **cfg):
    """A real assistant over `engine(name)` (or a given engine) with a few quick tools."""
    from assistant.factory import build_assistant, build_runner
    from assistant.session import AssistantConfig

    acfg = AssistantConfig(tools=list(tools), trace_dir=str(trace_dir), max_new_tokens=MAX_NEW_TOKENS, **cfg)
    eng = engine_obj if engine_obj is not None else engine(name)
    return build_assistant(None, acfg, engine=eng, runner=build_runner(acfg))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server for an ASGI app on 127.0.0.1, on a background thread."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def sign_png(folder: Path, name: str = "sign.png", text: str = "OPEN DAILY", seed: int = 1) -> Path:
    from synthetic.render import render_sign

    path = Path(folder) / name
    render_sign(seed=seed, text=text).image.save(path)
    return path


def data_url(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
