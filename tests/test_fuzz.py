"""Schemathesis against the whole demo API: no 5xx, and every answer as documented.

Every operation of the demo's OpenAPI document is fuzzed, with valid and invalid data
(schemathesis' positive and negative generation modes), by a caller of tenant ``demo``
holding every scope and a critical token, over seeded data (``testproject.seed``).
Path ids are drawn mostly from the seeded rows, in consistent chains (a team under its
own department under its own company), else from another tenant's rows, else made up
by schemathesis, so that the cases reach the handlers, not only the 404s. Each case
runs in a savepoint that is rolled back, so a DELETE does not starve the cases after it.

The app runs in-process (schemathesis' ASGI transport) on the ``shared_connection``
fixture, so the same fuzzing runs on SQLite and on PostgreSQL, and fast enough for CI;
what it looks for (a schema, status or content-type mismatch, a 500) does not depend on
real sockets, and the live-server modules cover concurrency.

Checks: ``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance``,
``response_schema_conformance``, ``response_headers_conformance``; ``ignored_auth``
for valid data (a 2xx is re-sent without and with a bad token: must be 401/403) and
``negative_data_rejection`` for invalid data (must be a 4xx).

``DJFAPI_FUZZ=thorough`` runs 200 examples per operation and mode, randomised; the
default (quick) runs 12, derandomised, so that CI is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.db import transaction
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi import checks

from testproject.app import create_app
from testproject.business.models import Company
from testproject.seed import DEMO_TENANT, DEMO_USER, seed_demo_data
from tests.helpers import auth
from tests.live.figures import record

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": 12, "derandomize": True},
    "thorough": {"max_examples": 200, "derandomize": False},
}
PROFILE = os.environ.get("DJFAPI_FUZZ", "quick")
if PROFILE not in PROFILES:
    raise ValueError(f"DJFAPI_FUZZ must be one of {sorted(PROFILES)}, not {PROFILE!r}")
EXAMPLES = PROFILES[PROFILE]["max_examples"]

CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
MODE_CHECKS = {
    GenerationMode.POSITIVE: [checks.ignored_auth],
    GenerationMode.NEGATIVE: [checks.negative_data_rejection],
}


def fields_beyond_selection(selection: str, body: Any) -> set[str]:
    """The top-level fields of a read answer (an item, or a page's items) that ``?fields=selection`` did not ask for."""
    asked = {path.split(".")[0].strip() for path in selection.split(",")}
    rows = body["items"] if isinstance(body, dict) and isinstance(body.get("items"), list) else [body]
    return {name for row in rows if isinstance(row, dict) for name in row if name not in asked}


def selected_fields_only(ctx: Any, response: Any, case: Any) -> bool | None:
    """A ``?fields=`` answer holds the fields asked for and no other.

    Its read schema's other fields are left out, as the parameter's description says, so
    the schema's ``required`` list does not apply to it; this check replaces
    ``response_schema_conformance`` for such a case.
    """
    selection = (case.query or {}).get("fields")
    if response.status_code != 200 or not isinstance(selection, str):
        return None
    extra = fields_beyond_selection(selection, response.json())
    if extra:
        raise AssertionError(f"?fields={selection} answered {sorted(extra)} as well")
    return True


def checks_for(case: Any, mode: GenerationMode) -> list[Any]:
    """The checks of a case: ``CHECKS`` and its mode's, with ``selected_fields_only`` for a ``?fields=`` one."""
    chosen = CHECKS + MODE_CHECKS[mode]
    if isinstance((case.query or {}).get("fields"), str):
        chosen = [check for check in chosen if check is not checks.response_schema_conformance]
        chosen.append(selected_fields_only)
    return chosen


def _operation_labels() -> list[str]:
    paths = create_app().openapi()["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item]


OPERATIONS = _operation_labels()
CASES: dict[str, int] = {}


@pytest.fixture(scope="module")
def schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def report_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if CASES:
        statuses = f"{len(CASES)} operations, {sum(CASES.values())} cases"
        record(request.config, f"schemathesis ({PROFILE}, {EXAMPLES} per operation and mode): {statuses}")


def id_chains(company: Company) -> list[dict[str, Any]]:
    """Consistent path ids for every route under ``company``."""
    chains: list[dict[str, Any]] = [{"company_id": str(company.pk)}]
    for department in company.departments.all():
        chains.append({"company_id": str(company.pk), "department_id": str(department.pk)})
        chains += [
            {"company_id": str(company.pk), "department_id": str(department.pk), "team_id": str(team.pk)}
            for team in department.teams.all()
        ]
    chains += [
        {"company_id": str(company.pk), "costcenter_id": costcenter.pk} for costcenter in company.costcenters.all()
    ]
    chains += [{"company_id": str(company.pk), "employee_id": str(employee.pk)} for employee in company.employees.all()]
    return chains


def fuzz_mode(
    mode: GenerationMode,
    operation: Any,
    client: Any,
    headers: Callable[[], dict[str, str]],
    mine: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
) -> None:
    """Run one generation mode's examples against ``operation``, each in a rolled-back savepoint."""
    has_ids = any(parameter.name.endswith("_id") for parameter in operation.path_parameters)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=PROFILES[PROFILE]["derandomize"],
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        fixed = None
        if has_ids:
            source = data.draw(st.sampled_from(["own", "own", "own", "foreign", "made up"]), label="ids")
            if source == "own" and mine:
                fixed = data.draw(st.sampled_from(mine))
            elif source == "foreign" and theirs:
                fixed = data.draw(st.sampled_from(theirs))
        case = data.draw(operation.as_strategy(mode, path_parameters=fixed))
        CASES[operation.label] = CASES.get(operation.label, 0) + 1
        savepoint = transaction.savepoint()
        try:
            case.call_and_validate(session=client, headers=headers(), checks=checks_for(case, mode))
        finally:
            transaction.savepoint_rollback(savepoint)

    if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()) and not has_body(operation):
        return  # nothing to send wrong (GET /auth/jwks.json): no negative case exists
    fuzz()


def has_body(operation: Any) -> bool:
    return bool(operation.get_request_payload_content_types())


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_answers_as_documented(
    label: str, app: FastAPI, schema: schemathesis.BaseSchema, shared_connection: None
) -> None:
    """No 5xx and nothing undocumented, whatever schemathesis sends to this operation.

    This is what catches a validation gap that reaches the database (a 500 on
    PostgreSQL for a NUL byte, say), an error status missing from the document, or a
    body that does not match its schema. A made-up id of the wrong shape is a 422, a
    well-formed one a 404, another tenant's a 404: all documented.
    """
    seed_demo_data()
    own = [chain for name in ("Acme Corp", "Globex") for chain in id_chains(Company.objects.get(name=name))]
    foreign = id_chains(Company.objects.get(name="Umbrella"))
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    id_names = {parameter.name for parameter in operation.path_parameters if parameter.name.endswith("_id")}
    mine = [chain for chain in own if set(chain) == id_names]
    theirs = [chain for chain in foreign if set(chain) == id_names]
    if label.endswith("/subscribe"):
        # A change feed streams until its token expires: a token minted for each case and
        # expiring at once makes a 200 stream send its "ready" event and close right away.
        def headers() -> dict[str, str]:
            return auth(DEMO_TENANT, DEMO_USER, critical=True, expires=0)
    else:
        fixed_headers = auth(DEMO_TENANT, DEMO_USER, critical=True)

        def headers() -> dict[str, str]:
            return fixed_headers

    with asgi.get_client(app) as client:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_mode(mode, operation, client, headers, mine, theirs)

    inputs = bool(list(operation.iter_parameters())) or has_body(operation)
    # hypothesis ran (and did not give up on the strategy); an operation without inputs has one case
    assert CASES[label] >= (EXAMPLES if inputs else 1)


def test_a_fields_answer_is_checked_against_the_selection_not_the_full_schema(
    client: Any, shared_connection: None
) -> None:
    seed_demo_data()
    Company.objects.filter(tenant_id=DEMO_TENANT).update(is_verified=True, status=Company.Status.ACTIVE)

    selected = client.get("/directory?limit=5&fields=id")
    whole = client.get("/directory?limit=5")

    assert selected.status_code == whole.status_code == 200
    assert selected.json()["items"], "the directory lists the verified companies"
    assert fields_beyond_selection("id", selected.json()) == set()
    assert fields_beyond_selection("id", whole.json()) == {"name"}  # what the check refuses
    assert fields_beyond_selection("id, name", whole.json()) == set()
