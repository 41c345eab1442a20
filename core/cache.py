"""The cache's Redis, for the work that needs more than get and set (sorted sets, hashes, scripts)."""

from typing import Any

from django.core.cache import cache


def redis_client() -> Any:
    """The cache's own Redis client: the connection settings every request uses."""
    return cache._cache.get_client(write=True)  # type: ignore[attr-defined]
