"""The tool protocol: small declarative classes and the registry they are registered in.

A tool states `name`, `description`, typed `inputs` (JSON-schema-like) and `version`, and does its work
in `forward(image, **args) -> list[Finding]`. The schema is checked when the class is defined, so a
broken tool fails at import. Heavy state (a model, a detector) loads in `setup()`, on first use.
Running tools (concurrently, time-bounded, cached, prefetched) is `tools/runner.py`'s job; their result
cache is `tools/cache.py`.
"""

from __future__ import annotations

import json
import threading
from typing import ClassVar

from tools.errors import BadInputError
from tools.evidence import Finding
from tools.images import ImageRef

# JSON-schema types a tool input may declare. "box" is [x0, y0, x1, y1] in original-image pixels.
INPUT_TYPES = {"string", "integer", "number", "boolean", "box", "array"}


class Tool:
    """Base class for tools. Subclasses set the class attributes and implement `forward`."""

    name: ClassVar[str]
    description: ClassVar[str]
    # {"param": {"type": ..., "description": ..., "default"?: ..., "enum"?: [...], "minimum"?, "maximum"?}}
    inputs: ClassVar[dict[str, dict]] = {}
    version: ClassVar[str] = "1"
    evidence_prefix: ClassVar[str] = ""  # "ocr" -> ids "ocr:1"...; defaults to the tool name
    timeout_s: ClassVar[float] = 30.0

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for attr in ("name", "description"):
            if not isinstance(cls.__dict__.get(attr, getattr(cls, attr, None)), str):
                raise TypeError(f"tool class {cls.__name__} must define a string `{attr}`")
        if not cls.name.isidentifier():
            raise TypeError(f"tool name {cls.name!r} must be an identifier")
        for pname, spec in cls.inputs.items():
            if not isinstance(spec, dict) or "type" not in spec or "description" not in spec:
                raise TypeError(f"tool {cls.name}: input {pname!r} needs 'type' and 'description'")
            if spec["type"] not in INPUT_TYPES:
                raise TypeError(f"tool {cls.name}: input {pname!r} has unknown type {spec['type']!r}")
            if "default" in spec and spec["default"] is not None:
                _check_value(cls.name, pname, spec, spec["default"])
        if "forward" not in cls.__dict__ and not any("forward" in b.__dict__ for b in cls.__mro__[1:-2]):
            raise TypeError(f"tool {cls.name} must implement forward()")

    def __init__(self):
        self._ready = False
        self._setup_lock = threading.Lock()

    def setup(self) -> None:
        """Load heavy state. Called once, on first use."""

    def forward(self, image: ImageRef, **args) -> list[Finding]:
        raise NotImplementedError

    def validate(self, args: dict) -> dict:
        """Check arguments against the schema and fill defaults; raises BadInputError with the reason."""
        unknown = set(args) - set(self.inputs)
        if unknown:
            raise BadInputError(
                f"tool {self.name}: unknown argument(s) {sorted(unknown)}; takes {sorted(self.inputs)}"
            )
        out = {}
        for pname, spec in self.inputs.items():
            if pname in args and args[pname] is not None:
                out[pname] = _check_value(self.name, pname, spec, args[pname])
            elif "default" in spec:
                out[pname] = spec["default"]
            else:
                raise BadInputError(f"tool {self.name}: missing required argument {pname!r}")
        return out

    def __call__(self, image: ImageRef, **args) -> list[Finding]:
        args = self.validate(args)
        if not self._ready:
            with self._setup_lock:
                if not self._ready:
                    self.setup()
                    self._ready = True
        return self.forward(image, **args)

    @classmethod
    def spec(cls) -> dict:
        """The tool as an OpenAI-style JSON function spec (for models that call tools)."""
        props = {"image": {"type": "integer", "description": "Index of the image (1 = first image)."}}
        required = []
        for pname, s in cls.inputs.items():
            p = {k: v for k, v in s.items() if k in ("description", "enum", "minimum", "maximum", "default")}
            if s["type"] == "box":
                p.update(type="array", items={"type": "number"}, minItems=4, maxItems=4)
                p["description"] = s["description"] + " [x0, y0, x1, y1] in image pixels."
            else:
                p["type"] = s["type"]
            props[pname] = p
            if "default" not in s:
                required.append(pname)
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": cls.description,
                "parameters": {"type": "object", "properties": props, "required": required},
            },
        }


def _check_value(tool: str, pname: str, spec: dict, value):
    t = spec["type"]
    where = f"tool {tool}: argument {pname!r}"
    if t == "box":
        if isinstance(value, str):
            try:
                value = [float(v) for v in value.split(",")]
            except ValueError:
                raise BadInputError(f"{where} must be x0,y0,x1,y1, got {value!r}") from None
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise BadInputError(f"{where} must be 4 numbers [x0, y0, x1, y1], got {value!r}")
        try:
            x0, y0, x1, y1 = (float(v) for v in value)
        except (TypeError, ValueError):
            raise BadInputError(f"{where} must be numbers, got {value!r}") from None
        if not (x1 > x0 and y1 > y0):
            raise BadInputError(f"{where} must have x1 > x0 and y1 > y0, got {value!r}")
        return (x0, y0, x1, y1)
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, (list, tuple)),
    }[t](value)
    if not ok:
        raise BadInputError(f"{where} must be {t}, got {value!r}")
    if "enum" in spec and value not in spec["enum"]:
        raise BadInputError(f"{where} must be one of {spec['enum']}, got {value!r}")
    if "minimum" in spec and value < spec["minimum"]:
        raise BadInputError(f"{where} must be >= {spec['minimum']}, got {value!r}")
    if "maximum" in spec and value > spec["maximum"]:
        raise BadInputError(f"{where} must be <= {spec['maximum']}, got {value!r}")
    return list(value) if t == "array" else value


class ToolRegistry:
    """Explicit registration: nothing registers itself by being imported."""

    def __init__(self):
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if not isinstance(tool, Tool):
            raise TypeError(f"expected a Tool instance, got {type(tool).__name__}")
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise BadInputError(f"unknown tool {name!r}; available: {sorted(self._tools)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict]:
        return [t.spec() for t in self._tools.values()]


def call_key(tool: Tool, args: dict) -> str:
    """Canonical string for (tool name, version, arguments): part of the cache key and evidence identity."""
    return json.dumps({"tool": tool.name, "v": tool.version, "args": args}, sort_keys=True, default=list)
