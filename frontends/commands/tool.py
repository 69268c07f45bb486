"""Run one tool on one image and print its evidence records.

    python launch.py tool ocr IMG --json
    python launch.py tool detect IMG --classes person bus --conf 0.4
    python launch.py tool classify IMG --top 5
    python launch.py tool zoom IMG --box 10,20,200,80
    python launch.py tool color IMG --region 0,0,100,100
    python launch.py tool metadata IMG

Each tool's flags are built from its `inputs` schema. Records carry `id`, `text` (and `label` for
detections), `confidence` and `box` as [x0, y0, x1, y1] in pixels of the original (upright) image.
"""

from __future__ import annotations

import argparse
import json
import sys

from tools.registry import BUILTIN_TOOLS, tool_class


def _add_input_flags(p: argparse.ArgumentParser, inputs: dict) -> None:
    for pname, spec in inputs.items():
        flag = "--" + pname.replace("_", "-")
        help_text = spec["description"]
        if spec.get("default") is not None:
            help_text += f" (default: {spec['default']})"
        kw: dict = {"dest": f"arg_{pname}", "default": None, "help": help_text, "metavar": pname.upper()}
        t = spec["type"]
        if t == "boolean":
            kw.update(action=argparse.BooleanOptionalAction, metavar=None)
        elif t == "box":
            kw.update(metavar="X0,Y0,X1,Y1", required="default" not in spec)
        elif t == "array":
            kw.update(nargs="+", metavar="VALUE")
        else:
            kw["type"] = {"integer": int, "number": float, "string": str}[t]
            if "enum" in spec:
                kw["choices"] = spec["enum"]
        p.add_argument(flag, **kw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tool_name", metavar="TOOL", required=True)
    for name in BUILTIN_TOOLS:
        try:
            cls = tool_class(name)
        except Exception as e:  # a tool that cannot be imported here still shows up, with the reason
            p = sub.add_parser(name, help=f"(unavailable: {e})")
            p.add_argument("image", metavar="IMG")
            p.set_defaults(tool_inputs={})
            continue
        p = sub.add_parser(name, help=cls.description, description=cls.description)
        p.add_argument("image", metavar="IMG", help="Image file (JPEG, PNG, WebP, ...).")
        p.add_argument("--json", action="store_true", help="Print the evidence records as a JSON list.")
        p.add_argument("--timeout", type=float, default=None, help=f"Seconds (default: {cls.timeout_s:g}).")
        if name == "detect":
            p.add_argument(
                "--weights",
                default=None,
                help="Detector weights: a .pt file, a release name (yolo11n.pt, the default), 'ssd' (the "
                "offline COCO SSD) or 'shapes'.",
            )
        _add_input_flags(p, cls.inputs)
        p.set_defaults(tool_inputs=cls.inputs)


def _table(evidence, seconds: float, cache_hit: bool) -> str:
    rows = [("id", "kind", "text", "conf", "box")]
    for e in evidence:
        box = "" if e.box is None else "[" + ", ".join(f"{v:.0f}" for v in e.box) + "]"
        text = e.text if len(e.text) <= 48 else e.text[:45] + "..."
        rows.append((e.id, e.kind, text, f"{e.confidence:.2f}", box))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    lines.append(f"{len(evidence)} record(s) in {seconds:.2f} s" + (" (cached)" if cache_hit else ""))
    return "\n".join(lines)


def run(args) -> int:
    from tools.cache import ToolCache
    from tools.errors import BadInputError, ToolError
    from tools.evidence import EvidenceStore
    from tools.images import ImageRef
    from tools.registry import default_registry
    from tools.runner import ToolRunner

    name = args.tool_name
    image = ImageRef.from_path(args.image)
    image.image  # noqa: B018 - decode now, so a bad file is a one-line error before any tool loads
    try:
        registry = default_registry(enabled=[name], detector_weights=getattr(args, "weights", None))
    except ImportError as e:
        raise BadInputError(f"tool {name} is unavailable here: {e}") from None
    tool = registry.get(name)
    tool_args = {
        p: getattr(args, f"arg_{p}") for p in args.tool_inputs if getattr(args, f"arg_{p}") is not None
    }
    result = ToolRunner(registry, ToolCache()).run_one(
        name, image, timeout_s=getattr(args, "timeout", None), **tool_args
    )
    if getattr(tool, "note", ""):
        print(f"note: {tool.note}", file=sys.stderr)
    if not result.ok:
        raise ToolError(name, result.error)
    evidence = EvidenceStore().add(
        name, image.id, result.findings, result.call_key, prefix=tool.evidence_prefix
    )
    if getattr(args, "json", False):
        # One record per line: readable, and still one JSON list for `json.loads`.
        print("[\n" + ",\n".join(json.dumps(e.to_dict()) for e in evidence) + "\n]" if evidence else "[]")
    else:
        print(_table(evidence, result.duration_s, result.cache_hit))
    return 0
