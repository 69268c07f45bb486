"""The grounded assistant: model core (`assistant.core`), the turn loop, prompts, verification and traces.

Importing this package is cheap: torch, transformers and the tools load on first use.
"""
