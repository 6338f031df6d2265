"""Benchmarks: ``python -m bench`` prints a table of figures and ratios (not timed tests)."""
