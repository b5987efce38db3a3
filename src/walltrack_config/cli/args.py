"""Argument types shared by the command modules (they import nothing of the command line, so no import cycle).

The Domain and Status choices are walltrack_config.domains' enums: one source, free of dependencies, so
`--help` never imports the models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ..domains import Domain, Status

__all__ = ["Domain", "DomainArg", "DraftOpt", "Format", "ReasonOpt", "Status", "YesOpt", "one_of"]


class Format(StrEnum):
    """What export writes."""

    YAML = "yaml"
    JSON = "json"


def one_of(choices: type[StrEnum]) -> str:
    """'a, b or c': an enum's values, for help texts."""
    *first, last = (c.value for c in choices)
    return f"{', '.join(first)} or {last}"


DomainArg = Annotated[Domain, typer.Argument(metavar="DOMAIN", help=f"{one_of(Domain)}.", show_default=False)]
DraftOpt = Annotated[str | None, typer.Option("--draft", help="The draft's id; default the domain's only draft.")]
ReasonOpt = Annotated[str | None, typer.Option(help="Why, for the audit trail.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
