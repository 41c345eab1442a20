"""Benchmarks: one module per area, each with a `main()`; `python -m bench` runs them all."""
