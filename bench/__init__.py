"""Benchmarks, one module per area; `python -m bench` runs every one of them."""
