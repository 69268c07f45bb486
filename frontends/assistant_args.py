"""Model and assistant flags shared by the commands that run the assistant (ui, batch, serve).

The flags are built from the config dataclasses (`ModelConfig`, `AssistantConfig`), so a new field with
its help text becomes a flag everywhere at once.
"""

from __future__ import annotations

import argparse

from frontends.cliargs import add_dataclass_args, dataclass_from_args


def add_assistant_args(parser: argparse.ArgumentParser) -> None:
    from assistant.core.config import ModelConfig
    from assistant.session import AssistantConfig

    add_dataclass_args(parser.add_argument_group("model"), ModelConfig)
    add_dataclass_args(
        parser.add_argument_group("assistant (tools, budget, verification, traces)"), AssistantConfig
    )


def configs_from_args(args: argparse.Namespace):
    """(ModelConfig, AssistantConfig) from the parsed flags."""
    from assistant.core.config import ModelConfig
    from assistant.session import AssistantConfig

    return dataclass_from_args(ModelConfig, args), dataclass_from_args(AssistantConfig, args)


def build_assistant_from_args(args: argparse.Namespace, **overrides):
    """The assistant the flags describe; `overrides` replace AssistantConfig fields (e.g. trace_dir)."""
    import dataclasses

    from assistant.factory import build_assistant

    model_cfg, assistant_cfg = configs_from_args(args)
    if overrides:
        assistant_cfg = dataclasses.replace(assistant_cfg, **overrides)
    return build_assistant(model_cfg, assistant_cfg)
