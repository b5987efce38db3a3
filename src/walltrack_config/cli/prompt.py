"""The command line's one question, shared by the commands that ask before they act."""

from __future__ import annotations

import sys


def confirm(question: str) -> bool:
    """Ask on stderr (stdout may be JSON); no answer, or no terminal and no input, is no."""
    from .render import visible

    sys.stderr.write(f"{visible(question)} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")
