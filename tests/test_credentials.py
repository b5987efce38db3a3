"""The pure half of principals: token format and entropy, digests, durations, password hashing and rules."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walltrack_config.credentials import (
    MAX_DURATION,
    MAX_PASSWORD,
    MIN_PASSWORD,
    TOKEN_PREFIX,
    digest,
    hash_password,
    lifetime_problems,
    new_secret,
    parse_duration,
    parse_token,
    verify_password,
)
from walltrack_config.domains import Role
from walltrack_config.errors import InvalidValue
from walltrack_config.principals import Principal, Token

TOKEN_SHAPE = re.compile(r"wtc_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def test_a_new_token_has_a_public_id_and_256_random_bits_and_parses_back():
    made = [new_secret() for _ in range(200)]
    assert len(set(made)) == len(made)
    assert len({parse_token(t)[0] for t in made}) == len(made)  # type: ignore[index]
    for token in made:
        assert TOKEN_SHAPE.fullmatch(token) and token.startswith(TOKEN_PREFIX)
        public_id, secret = parse_token(token) or ("", "")
        assert token == f"{TOKEN_PREFIX}{public_id}_{secret}"
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    # every secret character position varies: nothing fixed hides in the random part
    assert all(len({t[17 + i] for t in made}) > 8 for i in range(43))


@pytest.mark.parametrize(
    "bearer",
    [
        "",
        "wtc_",
        "wtc_0123456789ab",
        "wtc_0123456789ab_",
        "WTC_0123456789ab_" + "a" * 43,
        "wtc_0123456789AB_" + "a" * 43,
        "wtc_0123456789a_" + "a" * 44,
        "wtc_0123456789ab_" + "a" * 42,
        "wtc_0123456789ab_" + "a" * 44,
        "wtc_0123456789ab_" + "a" * 42 + "=",
        "wtc_0123456789ab_" + "a" * 43 + "\n",
        " wtc_0123456789ab_" + "a" * 43,
        "Bearer wtc_0123456789ab_" + "a" * 43,
        "wtc_0123456789ab_" + "é" * 43,
        "wtc_0123456789ab_" + "a" * 10_000,
        "x" * 1_000_000,
    ],
)
def test_a_malformed_token_is_none(bearer):
    assert parse_token(bearer) is None


def test_parse_token_refuses_what_is_not_text():
    assert parse_token(None) is None  # type: ignore[arg-type]
    assert parse_token(b"wtc_0123456789ab_" + b"a" * 43) is None  # type: ignore[arg-type]


@given(st.text(max_size=200))
def test_parse_token_accepts_exactly_the_token_shape(text):
    parsed = parse_token(text)
    assert (parsed is not None) == bool(TOKEN_SHAPE.fullmatch(text) and text.isascii())


@given(st.text())
def test_digest_is_sha256_hex(secret):
    assert digest(secret) == hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest(secret))


@given(
    st.integers(1, 999_999),
    st.sampled_from([("m", "minutes"), ("h", "hours"), ("d", "days"), ("w", "weeks")]),
    st.booleans(),
)
def test_parse_duration_reads_a_number_and_a_unit_up_to_ten_years(number, unit, upper):
    letter, name = unit
    if timedelta(**{name: number}) > MAX_DURATION:
        with pytest.raises(InvalidValue) as err:
            parse_duration(f"{number}{letter}")
        assert err.value.fields == ["expires"] and "at most 10 years" in str(err.value)
        return
    assert parse_duration(f"{number}{letter.upper() if upper else letter}") == timedelta(**{name: number})
    assert parse_duration(f" {number} {letter} ") == timedelta(**{name: number})


def test_durations_stop_at_ten_years_naming_the_field_and_the_limit():
    assert timedelta(days=3650) == MAX_DURATION
    for text, expected in (
        ("3650d", timedelta(days=3650)),
        ("521w", timedelta(weeks=521)),
        ("87600h", timedelta(hours=87600)),
        ("999999m", timedelta(minutes=999_999)),
    ):
        assert parse_duration(text) == expected
    for text in ("3651d", "522w", "87601h", "500000w", "999999d", "999999h"):
        for field in ("expires", "ttl"):
            with pytest.raises(InvalidValue) as err:
                parse_duration(text, field=field)
            assert err.value.fields == [field]
            assert "at most 10 years (3650 days)" in str(err.value), str(err.value)
    assert lifetime_problems(MAX_DURATION, "ttl") == []
    for lifetime, needle in (
        (MAX_DURATION + timedelta(microseconds=1), "at most 10 years"),
        (timedelta(0), "positive"),
        (-timedelta(days=1), "positive"),
    ):
        (problem,) = lifetime_problems(lifetime, "ttl")
        assert problem.field == "ttl" and needle in problem.message


@pytest.mark.parametrize(
    "text", ["", "0d", "00h", "90", "d", "1.5d", "-1d", "1y", "1s", "1d2h", "9999999d", "٣d", "1 day", "1dd"]
)
def test_parse_duration_refuses_anything_else_naming_the_field(text):
    with pytest.raises(InvalidValue) as err:
        parse_duration(text)
    assert err.value.fields == ["expires"]
    with pytest.raises(InvalidValue) as err:
        parse_duration(text, field="ttl")
    assert err.value.fields == ["ttl"]


def test_a_password_is_hashed_with_argon2id_salted_and_verified():
    password = "correct horse battery"
    first, second = hash_password(password), hash_password(password)
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second and password not in first
    assert verify_password(first, password) and verify_password(second, password)
    assert not verify_password(first, password + " ")
    assert not verify_password(first, "")
    assert not verify_password("not a hash", password)
    assert not verify_password("$argon2id$v=19$m=65536,t=3,p=4$xx$yy", password)
    assert not verify_password(first, "x" * (MAX_PASSWORD + 1))
    assert not verify_password(first, "\udcff" * 12)


@pytest.mark.parametrize("password", ["", "a" * (MIN_PASSWORD - 1), "a" * (MAX_PASSWORD + 1), "\udcff" * 12])
def test_the_password_rules_refuse_without_quoting_the_password(password):
    with pytest.raises(InvalidValue) as err:
        hash_password(password)
    assert err.value.fields == ["password"]
    assert (password or "\0") not in str(err.value)


def test_the_shortest_and_the_longest_passwords_are_accepted():
    for password in ("a" * MIN_PASSWORD, "é" * MAX_PASSWORD):
        assert verify_password(hash_password(password), password)


def test_a_principal_acts_under_its_name_and_a_token_cannot_pass_for_a_user():
    user = Principal("user", uuid4(), "alice", Role.OPERATOR, uuid4(), None)
    token = Principal("token", uuid4(), "alice", Role.READER, uuid4(), None)
    assert (user.actor, token.actor) == ("alice", "token:alice")
    assert user.allows(Role.EDITOR) and user.allows(Role.OPERATOR) and not user.allows(Role.ADMIN)
    assert token.allows(Role.READER) and not token.allows(Role.EDITOR)


def test_a_token_is_active_until_revoked_or_expired():
    now = datetime.now(UTC)

    def token(expires_at, revoked_at=None) -> Token:
        return Token(
            uuid4(),
            "ci",
            "api",
            "reader",
            None,
            "0123456789ab",
            now,
            "me",
            expires_at,
            None,  # type: ignore[arg-type]
            revoked_at,
        )

    assert token(None).active and token(now + timedelta(minutes=1)).active
    assert not token(now - timedelta(seconds=1)).active
    assert not token(None, now).active
    assert token(None).role is Role.READER
    assert token(None).columns()["role"] == "reader" and token(None).columns()["active"] is True
