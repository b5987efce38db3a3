"""walltrack-config: WallTrack's settings in PostgreSQL, versioned, audited, live."""

from .errors import ConfigError

__all__ = ["ConfigError"]
__version__ = "0.1.0"
