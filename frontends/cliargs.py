"""CLI flags built from config dataclasses: one flag per field, help text from the field's metadata."""

from __future__ import annotations

import argparse
import dataclasses
import typing


def add_dataclass_args(parser: argparse.ArgumentParser, cls, prefix: str = "", skip: tuple = ()) -> None:
    """Add `--field-name` for every field of `cls` (but those named in `skip`); help comes from
    `field(metadata={"help": ...})`."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli") is False or f.name in skip:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f.metadata.get("help", "") + (
            f" (default: {default})" if default not in (None, "") else ""
        )
        kind = hints[f.name]
        origin = typing.get_origin(kind)
        if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        dest = prefix.replace("-", "_") + f.name
        if kind is bool and f.name.startswith("no_"):
            # a negative switch reads best as a plain flag (--no-tools), not --no-tools/--no-no-tools
            parser.add_argument(flag, dest=dest, action="store_true", default=default, help=help_text)
        elif kind is bool:
            parser.add_argument(
                flag, dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, dest=dest, nargs="*", default=default, help=help_text)
        else:
            choices = f.metadata.get("choices")
            parser.add_argument(flag, dest=dest, type=kind, default=default, choices=choices, help=help_text)


def dataclass_from_args(cls, args: argparse.Namespace, prefix: str = ""):
    """Build `cls` from parsed args added by `add_dataclass_args` (fields without a flag keep defaults)."""
    kw = {}
    for f in dataclasses.fields(cls):
        dest = prefix.replace("-", "_") + f.name
        if hasattr(args, dest):
            kw[f.name] = getattr(args, dest)
    return cls(**kw)
