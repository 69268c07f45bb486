"""Serve an OpenAI-compatible HTTP API: `/v1/chat/completions` (plain and streaming) and `/v1/models`.

By default each request runs the grounded assistant (tools on the request's images, verified answer);
citations, claims, evidence and the trace path come back in an extra `grounding` field. With `--raw`
the bare model is served instead, as vLLM would serve it, so another assistant can use this server as
its remote back end (`--model http://HOST:PORT`) and keep tools and verification local.
Images are sent as data URLs; remote image URLs are refused unless `--allow-remote-images`.
Binds to 127.0.0.1 unless --host says otherwise. The API key comes from --api-key-file, the
GROUNDED_VLM_API_KEY environment variable, or --api-key (visible to other users in `ps`).
One request per model runs at a time; up to --max-waiting wait, each at most --queue-timeout seconds,
and the rest get 503 with Retry-After (`GET /health` shows the queue).
A request's headers must arrive within --header-timeout seconds and its body must keep coming (at most
--body-timeout seconds between pieces); at most --max-connections are held, the oldest half-open one
closed first when more arrive. Without an API key, only `application/json` bodies are accepted, from no
other site's page, naming this server's address (or an --allowed-host) in `Host`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from frontends.assistant_args import add_assistant_args
from frontends.ops import add_ops_args

API_KEY_ENV = "GROUNDED_VLM_API_KEY"
# The process ends as soon as the server has stopped: tool threads of a request cut short by SIGTERM
# do not hold it open.
ONE_SHOT = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("--name", default=None, help="the model's name in /v1/models (default: the --model value)")
    p.add_argument(
        "--raw", action="store_true", help="serve the bare model (no tools, no verification), like vLLM would"
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` on every request (prefer --api-key-file or "
        f"${API_KEY_ENV}: a command line is visible to every user in `ps`)",
    )
    p.add_argument("--api-key-file", default=None, help="read the API key from this file (its first line)")
    p.add_argument(
        "--allow-remote-images",
        action="store_true",
        help="fetch http(s) image URLs named in requests (off by default)",
    )
    p.add_argument(
        "--max-request-mb", type=float, default=32.0, help="largest request body, MiB (default: 32)"
    )
    p.add_argument("--max-images", type=int, default=8, help="most images per request (default: 8)")
    p.add_argument(
        "--max-waiting",
        type=int,
        default=16,
        help="requests that may wait for the model; more get 503 at once (default: 16)",
    )
    p.add_argument(
        "--queue-timeout",
        type=float,
        default=120.0,
        help="seconds a request may wait to start before it gets 503 (default: 120)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=600.0,
        help="seconds an answer may take; a longer generation is stopped (default: 600)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a request's headers may take to arrive; a slower one gets 408 (default: 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="most seconds between two pieces of a request body; a stalled one gets 408 (default: 30)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="connections held at once; beyond it the oldest still sending its headers is closed (default: 1000)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="without an API key, a Host name besides the bound address that requests may name "
        "(repeatable; '*' allows any, which lets other sites' pages in through DNS rebinding)",
    )
    add_assistant_args(p)
    add_ops_args(p, metrics_port=False)  # GET /metrics on --port


def run(args: argparse.Namespace) -> int:
    from frontends.api import AssistantBackend, EngineBackend, ModelHub, ServeConfig, serve
    from frontends.assistant_args import build_assistant_from_args, configs_from_args
    from frontends.ops import Operations
    from frontends.runtime import eprint

    model_cfg, _ = configs_from_args(args)
    name = args.name or model_cfg.model
    cfg = ServeConfig(host=args.host, port=args.port, api_key=api_key(args))
    cfg.max_waiting = args.max_waiting
    cfg.queue_timeout_s = args.queue_timeout
    cfg.request_timeout_s = args.request_timeout
    cfg.limits.allow_remote_images = args.allow_remote_images
    cfg.limits.max_request_bytes = int(args.max_request_mb * 1024 * 1024)
    cfg.limits.max_images = args.max_images
    cfg.connections.header_timeout_s = args.header_timeout
    cfg.connections.body_timeout_s = args.body_timeout
    cfg.connections.max_connections = args.max_connections
    cfg.allowed_hosts = tuple(args.allowed_host)
    hub = ModelHub()
    if args.raw:
        from assistant.core import load_engine

        hub.add(name, lambda: EngineBackend(load_engine(model_cfg), name))
    else:
        hub.add(name, lambda: AssistantBackend(build_assistant_from_args(args), name))
    backend = hub.get(name)  # load now: a missing model fails at start, not on the first request
    # metrics (GET /metrics), drift (/health), spans (--otel), one JSON line per request (stderr)
    ops = Operations.from_args(args, default_log="-", serve=True)
    if hasattr(backend, "assistant"):
        ops.attach(backend.assistant)
    eprint(f"serving {backend.description}")
    eprint(
        f"as model {name!r} (and 'default') on http://{args.host}:{args.port}/v1 {'(raw)' if args.raw else ''}"
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_key:
        eprint(
            "warning: listening beyond this machine without --api-key; anyone who reaches it can run the model"
        )
    try:
        serve(hub, cfg, ops)
    finally:
        ops.close()
    return 0


def api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key-file, else $GROUNDED_VLM_API_KEY, else --api-key; None when none is set."""
    from tools.errors import BadInputError

    if args.api_key_file:
        path = Path(args.api_key_file)
        try:
            key = path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as e:
            raise BadInputError(f"cannot read --api-key-file {path}: {e.strerror or e}") from None
        if not key or not key[0].strip():
            raise BadInputError(f"--api-key-file {path} is empty")
        return key[0].strip()
    return os.environ.get(API_KEY_ENV, "").strip() or args.api_key or None
