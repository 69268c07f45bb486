"""Evaluation sets: a folder with cases.jsonl and its images, or a builtin set generated on first use."""
