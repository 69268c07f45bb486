"""Front ends over the assistant: CLI commands, the Gradio UI, batch Q&A, trace inspection, the HTTP API.

Arrows point one way: frontends -> assistant -> (assistant.core, tools). Nothing below imports from here.
"""
