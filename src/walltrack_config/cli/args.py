"""Argument types shared by the command modules (they import nothing of ours, so no import cycle)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

# Kept literal so --help need not import the models (tests hold it equal to models.DOMAINS).
Domain = Enum("Domain", {d: d for d in ("trading", "scoring", "discovery", "cluster", "risk", "exit", "api")}, type=str)
Status = Enum("Status", {s: s for s in ("default", "draft", "active", "archived")}, type=str)
Format = Enum("Format", {"yaml": "yaml", "json": "json"}, type=str)

DomainArg = Annotated[Domain, typer.Argument(metavar="DOMAIN", help="trading, scoring, discovery, cluster, risk, exit or api.",
                                             show_default=False)]
DraftOpt = Annotated[Optional[str], typer.Option("--draft", help="The draft's id; default the domain's only draft.")]
ReasonOpt = Annotated[Optional[str], typer.Option(help="Why, for the audit trail.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
