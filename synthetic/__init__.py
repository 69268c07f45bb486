"""Synthetic data the project generates itself: rendered text images (`render`) and shape scenes (`shapes`).

These are data generators for tests, the offline detector's training and the evaluation sets, not tools:
nothing here imports the rest of the project.
"""
