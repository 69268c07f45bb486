"""Model-driven tool calls: find JSON function calls in what a model wrote, robustly.

Models emit calls in several shapes; all are accepted, several per message:
- `<tool_call>{"name": "ocr", "arguments": {...}}</tool_call>` (Qwen, Hermes),
- a fenced ```json block holding a call or a list of calls,
- bare JSON objects in the text: `{"name": ..., "arguments": ...}`, `{"name": ..., "parameters": ...}`,
  `{"function": {"name": ..., "arguments": "<json string>"}}` (OpenAI style), `{"tool": ..., "args": ...}`.
Junk around or between calls is ignored; malformed JSON is repaired where it is cheap (single quotes,
trailing commas) and otherwise skipped. Only names of known tools count as calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCED = re.compile(r"```(?:json|tool_call|tool)?\s*(.*?)```", re.S)


@dataclass
class ParsedCall:
    name: str
    arguments: dict = field(default_factory=dict)
    raw: str = ""


# Models known to emit JSON function calls when given tool specs (matched against the model id).
TOOL_CALLING_MODELS = (
    "qwen2",
    "qwen3",
    "hermes",
    "llama-3.1",
    "llama-3.2",
    "llama-3.3",
    "mistral",
    "functionary",
    "gpt-",
)


def model_calls_tools(engine) -> bool:
    """Whether `auto` policy should let this model call tools itself."""
    model_id = str(getattr(engine, "model_id", "")).lower()
    return any(tag in model_id for tag in TOOL_CALLING_MODELS)


def parse_tool_calls(text: str, known: set[str] | None = None) -> list[ParsedCall]:
    """All tool calls in `text`, in order of appearance; `known` filters by tool name."""
    found: list[tuple[int, ParsedCall]] = []
    spans: list[tuple[int, int]] = []
    for rx in (_TAGGED, _FENCED):
        for m in rx.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            spans.append((m.start(), m.end()))
            for obj in _json_values(m.group(1)):
                found += [(m.start(), c) for c in _calls_in(obj, m.group(0))]
    # Bare JSON objects outside tags and fences.
    for start, end, obj in _bare_objects(text):
        if any(a <= start < b for a, b in spans):
            continue
        found += [(start, c) for c in _calls_in(obj, text[start:end])]
    found.sort(key=lambda t: t[0])
    calls = [c for _, c in found if known is None or c.name in known]
    return _dedupe(calls)


def strip_tool_calls(text: str) -> str:
    """The text with tool-call markup removed (what is left is the model's prose)."""
    text = _TAGGED.sub("", text)
    text = _FENCED.sub(lambda m: "" if _calls_in_any(m.group(1)) else m.group(0), text)
    for start, end, obj in reversed(list(_bare_objects(text))):
        if _calls_in(obj, ""):
            text = text[:start] + text[end:]
    return text.strip()


def _calls_in_any(s: str) -> bool:
    return any(_calls_in(o, "") for o in _json_values(s))


def _calls_in(obj, raw: str) -> list[ParsedCall]:
    if isinstance(obj, list):
        return [c for o in obj for c in _calls_in(o, raw)]
    if not isinstance(obj, dict):
        return []
    if isinstance(obj.get("tool_calls"), list):
        return _calls_in(obj["tool_calls"], raw)
    if isinstance(obj.get("function"), dict):
        return _calls_in(obj["function"], raw)
    name = obj.get("name", obj.get("tool", obj.get("function")))
    if not isinstance(name, str) or not name.strip():
        return []
    args = next((obj[k] for k in ("arguments", "parameters", "args", "input") if k in obj), {})
    if isinstance(args, str):
        parsed = _loads(args)
        args = parsed if isinstance(parsed, dict) else {}
    if not isinstance(args, dict):
        args = {}
    return [ParsedCall(name.strip(), args, raw)]


def _dedupe(calls: list[ParsedCall]) -> list[ParsedCall]:
    seen, out = set(), []
    for c in calls:
        key = (c.name, json.dumps(c.arguments, sort_keys=True, default=str))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _loads(s: str):
    s = s.strip()
    try:
        return json.loads(s)
    except ValueError:
        pass
    repaired = re.sub(r",\s*([}\]])", r"\1", s)  # trailing commas
    if "'" in repaired and '"' not in repaired:
        repaired = repaired.replace("'", '"')  # Python-style dict
    repaired = re.sub(
        r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", repaired))
    )
    try:
        return json.loads(repaired)
    except ValueError:
        return None


def _json_values(s: str) -> list:
    """JSON values in a tag or fence: the whole body, else each top-level object, else nothing."""
    whole = _loads(s)
    if whole is not None:
        return [whole]
    return [obj for _, _, obj in _bare_objects(s)]


def _bare_objects(text: str):
    """(start, end, value) for each balanced top-level {...} in text that parses as JSON."""
    i, n = 0, len(text)
    while i < n:
        if text[i] != "{":
            i += 1
            continue
        end = _matching_brace(text, i)
        if end is None:
            i += 1
            continue
        obj = _loads(text[i : end + 1])
        if obj is not None:
            yield i, end + 1, obj
            i = end + 1
        else:
            i += 1


def _matching_brace(text: str, start: int) -> int | None:
    depth, in_str, esc, quote = 0, False, False, ""
    for j in range(start, min(len(text), start + 20000)):
        ch = text[j]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                in_str = False
        elif ch in "\"'":
            in_str, quote = True, ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j
    return None
