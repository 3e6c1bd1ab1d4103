"""Benchmarks run as ``python -m lab.bench.<name>`` (they may print)."""
