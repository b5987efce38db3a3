"""The walltrack-config command line: typer commands over the library; only this package prints."""

from .main import main

__all__ = ["main"]
