"""Live configuration for running processes: `LiveConfig` keeps every domain's active settings in memory,
kept current by the listen → reload → compare engine."""

from ..errors import LiveConfigUnavailable
from .config import Health, LiveConfig, LiveRow

__all__ = ["Health", "LiveConfig", "LiveConfigUnavailable", "LiveRow"]
