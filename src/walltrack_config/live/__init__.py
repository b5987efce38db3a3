"""Live configuration for running processes: `LiveConfig` keeps every domain's active settings in memory,
kept current by a `Listener` (live.engine), the listen → reload → compare engine a server can share."""

from ..errors import LiveConfigUnavailable
from .config import Health, LiveConfig
from .engine import Listener, LiveRow, Reading, Refused

__all__ = ["Health", "Listener", "LiveConfig", "LiveConfigUnavailable", "LiveRow", "Reading", "Refused"]
