"""Fixtures of the clusters tests."""

# --- Run time: a simulated fleet served over loopback HTTP.
from tests.clusters.runtime_helpers import fleet_of  # noqa: F401
