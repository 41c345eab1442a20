"""Benchmarks: one module per area, each with a `main()`; `python -m bench` runs them all."""

# Booking needs a key to install (clusters.services.lease_keys): every benchmark customer has this one.
BENCH_SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO9b5HXZXuZRtv+JcQ1bV/JpWNj7FXofAzvQyLj7ValI bench@voltpark"
)
