"""Benchmarks run as ``python -m reid_core.bench.<name>`` (they may print)."""
