"""The API against its own OpenAPI document, fuzzed by schemathesis over real HTTP and real PostgreSQL: no input
gets a 5xx, and every answer matches the schema the document declares for it. Deterministic (derandomized,
no example database) and small, so it runs in CI on every change."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server_support import Api, serving
from walltrack_config.domains import DOMAINS

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
)

EXAMPLES = 25  # per operation, with a token; without one every answer is the same 401, so fewer
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def fuzzed(migrated_db: str) -> Iterator[Api]:
    # Limits high enough that the fuzzer's failed sign-ins do not turn every later answer into a 429.
    with serving(migrated_db, failures_per_address=100_000, failures_per_name=100_000) as api:
        yield api


def _operations(api: Api) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = schemathesis.openapi.from_url(f"{api.base}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in api.app.openapi()["paths"].values())
    # An event stream never ends, so a fuzzer's client would wait for its end forever; its refusals are tested
    # in test_server_api (test_the_stream_refuses_like_every_other_route).
    return [op for op in operations if not op.path.endswith("/stream")]


# Path parameters the document can only call strings: most of the time a real one, so that the fuzzer gets
# past "no such domain" to the routes' own rules.
REAL = {
    "domain": st.sampled_from(DOMAINS),
    "ref": st.sampled_from(["active", "default", "draft", "archived", "Active Configuration"]),
    "name": st.sampled_from(["reader-token", "nobody", "fuzzed"]),
}


def _realistic(operation: Any, mode: GenerationMode) -> st.SearchStrategy[Any]:
    names = [p for p in REAL if "{" + p + "}" in operation.path]
    if not names or mode is GenerationMode.NEGATIVE:
        return operation.as_strategy(generation_mode=mode)

    def real(pair: tuple[Any, dict[str, Any] | None]) -> Any:
        case, chosen = pair
        if chosen is not None:
            case.path_parameters.update(chosen)
        return case

    chosen = st.one_of(st.none(), st.fixed_dictionaries({p: REAL[p] for p in names}))
    return st.tuples(operation.as_strategy(generation_mode=mode), chosen).map(real)


def _fuzz(
    api: Api, headers: dict[str, str], examples: int, mode: GenerationMode = GenerationMode.POSITIVE
) -> dict[str, set[int]]:
    """Every operation, `examples` cases each; the statuses seen per operation (none: no such case exists)."""
    seen: dict[str, set[int]] = {}
    for operation in _operations(api):
        statuses = seen.setdefault(operation.label, set())
        try:
            _check(api, operation, headers, examples, mode, statuses)()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong: no parameters, no body
    return seen


def _check(
    api: Api, operation: Any, headers: dict[str, str], examples: int, mode: GenerationMode, statuses: set[int]
) -> Callable[[], None]:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=_realistic(operation, mode))
    def check(case: Any) -> None:
        response = case.call(base_url=api.base, headers=headers, timeout=30)
        statuses.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    return check


def test_no_input_gets_a_server_error_and_every_answer_matches_the_schema(fuzzed: Api):
    seen = _fuzz(fuzzed, {"Authorization": f"Bearer {fuzzed.tokens['admin']}"}, EXAMPLES)
    # Past authentication: the fuzzer reached the routes themselves, not only the 401 in front of them.
    assert {200} <= seen["GET /api/v1/config"] and 200 in seen["GET /api/v1/users"]
    assert all(seen.values()), seen
    assert {200, 404} <= seen["GET /api/v1/config/{domain}/rows/{ref}"]
    assert 201 in seen["POST /api/v1/config/{domain}/drafts"]


def test_invalid_input_gets_a_4xx_problem_never_a_server_error(fuzzed: Api):
    seen = _fuzz(fuzzed, {"Authorization": f"Bearer {fuzzed.tokens['admin']}"}, 10, GenerationMode.NEGATIVE)
    assert sum(bool(statuses) for statuses in seen.values()) >= 15, seen
    assert all(code < 500 for statuses in seen.values() for code in statuses), seen


def test_without_a_token_every_guarded_operation_answers_401_as_declared(fuzzed: Api):
    seen = _fuzz(fuzzed, {}, 5)
    public = {"POST /api/v1/login", "GET /api/v1/healthz", "GET /api/v1/readyz"}
    for label, statuses in seen.items():
        if label not in public:
            assert statuses <= {401, 422}, (label, statuses)
