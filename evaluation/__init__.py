"""Evaluation: run the assistant over sets of questions with known answers, score each sample, report.

`launch.py eval` is the entry point (frontends/commands/eval.py); see runner.py for the flow.
"""
