"""Benchmarks run as ``python -m reid_core.experiments.bench.<name>`` (they may print)."""
