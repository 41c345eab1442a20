"""Voltpark's Python client and `voltpark` command line, on the public API (/api/v1/)."""

from voltpark_client.client import (
    VERSION,
    ApiError,
    Client,
    ConnectionFailed,
    LeaseEnded,
    VoltparkError,
    WaitTimedOut,
)
from voltpark_client.config import Settings, load_settings

__version__ = VERSION
__all__ = [
    "ApiError",
    "Client",
    "ConnectionFailed",
    "LeaseEnded",
    "Settings",
    "VoltparkError",
    "WaitTimedOut",
    "load_settings",
]
