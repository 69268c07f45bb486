"""Test-wide settings: no network, ever; shared fixtures live in tests/fixtures/ (one module per area)."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"
# No OMP_THREAD_LIMIT here: the OCR tool limits Tesseract per subprocess; set process-wide it pins
# torch to one thread and hangs ultralytics training.

pytest_plugins = [
    "tests.fixtures.models",  # tiny LLaVA / Mllama / SmolLM2 engines, built once and cached on disk
    "tests.fixtures.images",  # rendered signs, receipts, paragraphs, injection images
    "tests.fixtures.detector",  # the project's own detector, trained once on synthetic shapes and cached
]
