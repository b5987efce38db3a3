"""Secrets and how they are checked, free of any database: token format, digests, passwords, durations.

A token reads `wtc_<12 hex public id>_<43 base64url secret>`: the public id finds its row, the secret proves
it. The database keeps SHA-256 of a token's secret (256 random bits leave nothing to guess, so a slow hash
would only slow every request) and argon2id of a password (people choose guessable ones, so guessing must
be slow). Nothing here ever puts a password or a secret into an exception's message.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from .domains import ROLES, Role
from .errors import FieldError, InvalidValue

if TYPE_CHECKING:
    from argon2 import PasswordHasher

TOKEN_PREFIX = "wtc_"
NAME_RULE = "1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit"
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
MAX_TOKEN_LENGTH = 128  # far above a real token (60): a longer bearer is refused before any regex runs
# The longest lifetime of a token or a session: far beyond any sensible one, and far below what PostgreSQL's
# timestamps can reach (now() + '500000 weeks' overflows them).
MAX_DURATION = timedelta(days=3650)
MAX_DURATION_TEXT = "10 years (3650 days)"

# As V12's chk_users_name and chk_api_tokens_name. No ':': an API token acts as 'token:<name>'.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", re.ASCII)
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"([0-9a-f]{12})_([A-Za-z0-9_-]{43})", re.ASCII)
_DURATION = re.compile(r"\s*([0-9]{1,6})\s*([mhdw])\s*", re.ASCII | re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def new_secret() -> str:
    """A new token: a public id to find it by and 256 random bits, shown once and stored only as a digest."""
    return f"{TOKEN_PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def parse_token(bearer: str) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed token; None for anything else."""
    if not isinstance(bearer, str) or len(bearer) > MAX_TOKEN_LENGTH:
        return None
    found = _TOKEN.fullmatch(bearer)
    return (found[1], found[2]) if found else None


def digest(secret: str) -> str:
    """SHA-256 of a token's secret part, as hex: what the database keeps."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def lifetime_problems(lifetime: timedelta, field: str) -> list[FieldError]:
    """What is wrong with a token's or a session's lifetime: not positive, or longer than MAX_DURATION."""
    if lifetime <= timedelta(0):
        return [FieldError(field, "must be positive")]
    if lifetime > MAX_DURATION:
        return [FieldError(field, f"must be at most {MAX_DURATION_TEXT}")]
    return []


def parse_duration(text: str, *, field: str = "expires") -> timedelta:
    """'30m', '12h', '90d' or '2w' (a positive whole number and a unit, at most MAX_DURATION) as a timedelta."""
    found = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if found is None or int(found[1]) == 0:
        raise InvalidValue(
            "token",
            [
                FieldError(
                    field,
                    "a positive whole number and a unit: m (minutes), h (hours), d (days) or w (weeks), as in 90d",
                )
            ],
        )
    lifetime = timedelta(**{_UNITS[found[2].lower()]: int(found[1])})
    if problems := lifetime_problems(lifetime, field):
        raise InvalidValue("token", problems)
    return lifetime


def name_problems(name: object) -> list[FieldError]:
    return [] if isinstance(name, str) and _NAME.fullmatch(name) else [FieldError("name", NAME_RULE)]


def role_of(role: object, problems: list[FieldError]) -> Role:
    """The role named; a problem added (and reader returned, to be discarded) when it names none."""
    if isinstance(role, str) and role in ROLES:
        return Role(role)
    problems.append(FieldError("role", f"one of {', '.join(ROLES)}"))
    return Role.READER


def password_problems(password: object) -> list[FieldError]:
    """What the password rules refuse (never quoting the password)."""
    if not isinstance(password, str):
        return [FieldError("password", "must be text")]
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return [FieldError("password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")]
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, kept by Python as lone surrogates
        return [FieldError("password", "must be UTF-8 text")]
    return []


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, with the library's current (RFC 9106) parameters


@cache
def dummy_hash() -> str:
    """What an unknown name's password is checked against, so that refusing it takes as long as a known one."""
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The argon2id hash of a password the rules accept (InvalidValue on 'password' otherwise)."""
    if problems := password_problems(password):
        raise InvalidValue("user", problems)
    return _hasher().hash(password)


def verify_password(hash: str, password: str) -> bool:
    """Whether the password is the hashed one; False for a malformed hash or password, never an exception."""
    from argon2.exceptions import InvalidHashError, VerificationError

    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""  # still verified, against nothing that can match: a refusal takes as long as a mismatch
    try:
        return _hasher().verify(hash, password) and bool(password)
    except (VerificationError, InvalidHashError, TypeError, UnicodeError):
        return False
