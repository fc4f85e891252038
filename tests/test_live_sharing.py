"""Subscribers share the feed's work across users only where that cannot change what they see.

``djfapi.live.sharing`` is the rule: groups whose row filters return equal *plain* ``Q``
objects (type for type) see the same rows, whoever the users are; a ``Q`` holding a
subquery, an expression or an object of its own is never compared; field scopes render
once per set of grants. ``djfapi.live.visibility.evaluate`` answers many groups at once.
These tests check that isolation still holds with that sharing — in the evaluation
itself (tenants, ``own``, field scopes, custom filters) and end to end over SSE — and
that the sharing and batching actually happen (statements per page).
"""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q
from django.test.utils import CaptureQueriesContext
from django.utils.functional import SimpleLazyObject
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.live import sharing, visibility
from djfapi.live.outbox import Event
from djfapi.live.visibility import Request
from djfapi.routing import queries
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from djfapi.schemas.access import Access, AccessScope, AccessToken
from testproject.api import companies, employees, token
from testproject.business import schemas
from testproject.business.models import Company, Employee
from tests.factories import make_company, make_employee
from tests.helpers import OTHER_TENANT, TENANT, auth
from tests.livefeed import feed_client, ready, subscribe

READ_ANY = "business.companies.read.any"
READ_OWN = "business.companies.read.own"
COMPANY = "business.company"
EMPLOYEE = "business.employee"


def access(user: str, tenant: str = TENANT, scopes: tuple[str, ...] = (READ_ANY,), scope: str | None = None) -> Access:
    """The caller a route would see: the first of ``scopes`` (or ``scope``) matched."""
    matched = scope or scopes[0]
    return Access(
        token=AccessToken(sub=user, ten=tenant, exp=2**31, aud=list(scopes)),
        scope=AccessScope.from_str(matched),
        granted_scopes=frozenset(scopes),
    )


def event(number: int, obj: Any, model: str = COMPANY, action: str = "UPDATE") -> Event:
    tenant = getattr(obj, "tenant_id", None)
    refs = {"company_id": str(obj.company_id)} if model == EMPLOYEE else {}
    return Event(number, model, str(obj.pk), action, tenant, refs)


def received(outcome: Any) -> dict[int, dict[str, Any] | None]:
    """event id -> the data sent (None for a DELETE), for the events that are sent."""
    import json

    assert not isinstance(outcome, Exception), outcome
    return {
        event_id: json.loads(verdict.frame).get("data")
        for event_id, verdict in outcome.items()
        if verdict.frame is not None
    }


# -- the rule ----------------------------------------------------------------------------------


def test_plain_answers_are_compared_value_for_value_and_type_for_type() -> None:
    key = sharing.q_key
    assert key(Q(tenant_id="a") & Q(status="active")) == key(Q(tenant_id="a") & Q(status="active"))
    assert key(Q(tenant_id="a")) != key(Q(tenant_id="b"))
    assert key(Q(flag=True)) != key(Q(flag=1))  # equal in Python, not the same parameter
    assert key(Q(code=decimal.Decimal("1.0"))) != key(Q(code=decimal.Decimal("1")))  # a text column tells them apart
    assert key(Q(value=0.0)) != key(Q(value=-0.0))
    moment = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC)
    assert key(Q(at=moment)) != key(Q(at=moment.astimezone(datetime.timezone(datetime.timedelta(hours=1)))))
    assert key(Q(pk__in=[1, 2])) != key(Q(pk__in=(1, 2)))
    assert key(~Q(tenant_id="a")) != key(Q(tenant_id="a"))
    assert key(Q(tenant_id="a") | Q(tenant_id="b")) != key(Q(tenant_id="a") & Q(tenant_id="b"))
    one = {"pk": uuid.UUID(int=1), "created_at": moment}
    assert key(Q(company=Company(**one, name="a"))) == key(Q(company=Company(**one, name="a")))
    assert key(Q(company=Company(**one, name="a"))) != key(Q(company=Company(**one, name="b")))  # to_field may read it
    assert key(Q(name=F("code"))) == key(Q(name=F("code")))


@pytest.mark.parametrize(
    "opaque",
    [
        Q(Exists(Employee.objects.filter(company=OuterRef("pk"), user_id="u"))),
        Q(pk__in=Employee.objects.filter(user_id="u").values("company_id")),
        Q(name=SimpleLazyObject(lambda: "u")),  # the user smuggled in lazily
        Q(name=object()),
        type("MyQ", (Q,), {})(tenant_id="a"),  # a subclass may compile differently
    ],
    ids=["exists", "queryset", "lazy", "object", "subclass"],
)
def test_a_filter_answer_holding_anything_but_plain_values_is_never_compared(opaque: Q) -> None:
    assert not sharing.is_plain(opaque)
    assert sharing.visibility_key({companies: opaque}, access("u"), {}) is None


def test_who_shares_what_in_the_demo(transactional_db: None) -> None:
    """``any`` callers of one tenant share visibility whoever they are; ``own`` callers never do."""

    def key(caller: Access) -> Any:
        return sharing.visibility_key(sharing.row_filters(companies, caller), caller, {})

    assert key(access("ann")) == key(access("bob", scopes=(READ_ANY, READ_OWN)))
    assert key(access("ann")) != key(access("ann", tenant=OTHER_TENANT))
    assert key(access("ann", scopes=(READ_OWN,))) is None
    # Rendering depends on the grants the schema mentions, not on the user.
    assert sharing.render_key(employees, access("ann")) == sharing.render_key(employees, access("bob"))
    assert sharing.render_key(employees, access("ann")) != sharing.render_key(
        employees, access("ann", scopes=(READ_OWN,))
    )
    assert sharing.render_key(companies, access("ann")) == sharing.render_key(
        companies, access("ann", scopes=(READ_OWN,))
    )


def test_the_feeds_chain_is_the_chain_get_reads(transactional_db: None) -> None:
    """``visibility.chain_rows`` rebuilds ``routing.queries.rows_in_chain`` from the filters' answers."""
    company = make_company()
    for node, ids in ((companies, {}), (employees, {"company_id": company.pk})):
        for caller in (access("ann"), access("ann", scopes=(READ_OWN,))):
            ours = visibility.chain_rows(node, sharing.row_filters(node, caller), ids)
            assert str(ours.query) == str(queries.rows_in_chain(node, caller, ids).query)


# -- isolation when grouped --------------------------------------------------------------------


@pytest.fixture
def two_tenants(transactional_db: None) -> dict[str, Any]:
    ours, theirs, owned = (
        make_company(name="Ours"),
        make_company(tenant=OTHER_TENANT, name="Theirs"),
        make_company(name="Owned"),
    )
    make_employee(owned, user_id="own-user", role=Employee.Type.OWNER, salary="90000.00")
    hired = make_employee(ours, user_id="hire", salary="71000.00")
    abroad = make_employee(theirs, user_id="abroad", salary="65000.00")
    return {"ours": ours, "theirs": theirs, "owned": owned, "hired": hired, "abroad": abroad}


def test_tenants_and_own_callers_see_exactly_their_companies_when_evaluated_together(
    two_tenants: dict[str, Any],
) -> None:
    ours, theirs, owned = two_tenants["ours"], two_tenants["theirs"], two_tenants["owned"]
    page = [event(1, ours), event(2, theirs), event(3, owned)]
    callers = {
        "ann (any)": access("ann"),
        "bob (any, every scope)": access("bob", scopes=(READ_ANY, READ_OWN)),
        "own-user (own)": access("own-user", scopes=(READ_OWN,)),
        "ann (own)": access("ann", scopes=(READ_OWN,)),
        "eve (other tenant)": access("eve", tenant=OTHER_TENANT),
        "own-user of the other tenant (own)": access("own-user", tenant=OTHER_TENANT, scopes=(READ_OWN,)),
    }
    outcomes = visibility.evaluate(companies, [Request(name, caller, {}, page) for name, caller in callers.items()])

    seen = {name: received(outcome) for name, outcome in outcomes.items()}
    assert set(seen["ann (any)"]) == set(seen["bob (any, every scope)"]) == {1, 3}
    assert set(seen["own-user (own)"]) == {3}
    assert set(seen["ann (own)"]) == set()
    assert set(seen["eve (other tenant)"]) == {2}
    assert set(seen["own-user of the other tenant (own)"]) == set()
    assert seen["eve (other tenant)"][2]["tenant_id"] == OTHER_TENANT
    assert seen["ann (any)"][1]["name"] == "Ours"


def test_field_scopes_apply_per_caller_when_callers_share_visibility(two_tenants: dict[str, Any]) -> None:
    """Callers of one tenant share one visibility class, but only those granted ``read.any``
    get the salary; the other tenant sees none of them."""
    staff = DjangoRouterSchema(
        name="staff",
        model=Employee,
        get=schemas.Employee,
        security=token,
        objects_filter=lambda caller: Q(company__tenant_id=caller.tenant_id),  # plain, across a relation
        security_scopes=SecurityScopes(get=[READ_ANY, "business.staff.read"]),
        create=None,
        update=None,
        delete=False,
    )
    hired, abroad = two_tenants["hired"], two_tenants["abroad"]
    page = [event(1, hired, EMPLOYEE), event(2, abroad, EMPLOYEE)]
    callers = {
        "salaries": access("ann", scopes=(READ_ANY,)),
        "also salaries": access("bob", scopes=(READ_ANY, READ_OWN)),
        "no salaries": access("cid", scopes=("business.staff.read",)),
        "other tenant": access("eve", tenant=OTHER_TENANT, scopes=("business.staff.read",)),
    }
    outcomes = visibility.evaluate(staff, [Request(name, caller, {}, page) for name, caller in callers.items()])

    seen = {name: received(outcome) for name, outcome in outcomes.items()}
    assert set(seen["salaries"]) == set(seen["also salaries"]) == set(seen["no salaries"]) == {1}
    assert seen["salaries"][1]["salary"] == "71000.00"
    assert seen["also salaries"][1] == seen["salaries"][1]
    assert "salary" not in seen["no salaries"][1]
    assert set(seen["other tenant"]) == {2} and "salary" not in seen["other tenant"][2]


def test_a_custom_filter_that_depends_on_the_user_is_never_shared_across_users(transactional_db: None) -> None:
    """Plain answers that differ per user keep users apart; a filter is asked again every time."""
    mine, yours = make_company(name="ann's"), make_company(name="bob's")
    allowed = {"ann": ["ann's"], "bob": ["bob's"]}
    calls: list[str] = []

    def by_name(caller: Access | None) -> Q:
        assert caller is not None
        calls.append(caller.user_id)
        return Q(tenant_id=caller.tenant_id, name__in=list(allowed[caller.user_id]))

    firms = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=schemas.Company,
        security=token,
        objects_filter=by_name,
        security_scopes=SecurityScopes(get=[READ_ANY]),
        create=None,
        update=None,
        delete=False,
    )
    page = [event(1, mine), event(2, yours)]
    requests = [Request("ann", access("ann"), {}, page), Request("bob", access("bob"), {}, page)]

    first = visibility.evaluate(firms, requests)
    assert set(received(first["ann"])) == {1} and set(received(first["bob"])) == {2}
    allowed["ann"] = ["bob's"]  # the filter's answer changes: the next evaluation follows it
    second = visibility.evaluate(firms, requests)
    assert set(received(second["ann"])) == {2}
    assert calls == ["ann", "bob", "ann", "bob"]


def test_a_filter_that_raises_fails_only_the_groups_that_asked_it(two_tenants: dict[str, Any]) -> None:
    def fussy(caller: Access | None) -> Q:
        assert caller is not None
        if caller.user_id == "mallory":
            raise RuntimeError("no filter for mallory")
        return Q(tenant_id=caller.tenant_id)

    firms = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=schemas.Company,
        security=token,
        objects_filter=fussy,
        security_scopes=SecurityScopes(get=[READ_ANY]),
        create=None,
        update=None,
        delete=False,
    )
    page = [event(1, two_tenants["ours"])]
    outcomes = visibility.evaluate(
        firms, [Request("ann", access("ann"), {}, page), Request("m", access("mallory"), {}, page)]
    )

    assert set(received(outcomes["ann"])) == {1}
    assert isinstance(outcomes["m"], RuntimeError)


def test_one_statement_answers_a_page_for_every_caller_that_shares(transactional_db: None) -> None:
    """Forty ``any`` callers over two tenants: one statement for the page, whatever the number of users."""
    rows = [make_company(tenant=TENANT if n % 2 else OTHER_TENANT, name=f"c{n}") for n in range(10)]
    page = [event(n + 1, row) for n, row in enumerate(rows)]
    callers = [access(f"user-{n}", tenant=TENANT if n % 2 else OTHER_TENANT) for n in range(40)]

    with CaptureQueriesContext(connection) as captured:
        outcomes = visibility.evaluate(companies, [Request(n, caller, {}, page) for n, caller in enumerate(callers)])

    statements = [q["sql"] for q in captured.captured_queries if re.search(r'FROM "business_company"(\s|$)', q["sql"])]
    assert len(statements) == 1, statements  # the nested lists (departments, cost centres) are read per page too
    for number, caller in enumerate(callers):
        assert {data["tenant_id"] for data in received(outcomes[number]).values()} == {caller.tenant_id}
        assert len(received(outcomes[number])) == 5


def test_own_callers_are_asked_only_about_rows_of_their_tenant(transactional_db: None) -> None:
    """``own`` answers hold a subquery: each is evaluated on its own, after the tenant sieve."""
    owned = make_company(name="owned")
    make_employee(owned, user_id="u1", role=Employee.Type.OWNER)
    other = make_company(tenant=OTHER_TENANT, name="elsewhere")
    callers = [access(f"u{n}", tenant=OTHER_TENANT if n > 5 else TENANT, scopes=(READ_OWN,)) for n in range(1, 11)]

    with CaptureQueriesContext(connection) as captured:
        outcomes = visibility.evaluate(companies, [Request(n, c, {}, [event(1, owned)]) for n, c in enumerate(callers)])

    exists = [q["sql"] for q in captured.captured_queries if "EXISTS" in q["sql"]]
    assert len(exists) == 1  # one statement for the five callers of the row's tenant, none for the others
    assert [n for n, outcome in outcomes.items() if received(outcome)] == [0]
    assert other.pk  # a row of the other tenant exists, and nobody was asked about it


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def test_grouped_subscribers_of_two_tenants_receive_exactly_their_events_and_fields(feed: TestClient) -> None:
    ours, theirs = make_company(name="Ours"), make_company(tenant=OTHER_TENANT, name="Theirs")
    make_employee(ours, user_id="boss", role=Employee.Type.OWNER)
    make_employee(theirs, user_id="chef", role=Employee.Type.OWNER)
    here, there = f"/companies/{ours.pk}/employees/subscribe", f"/companies/{theirs.pk}/employees/subscribe"
    with (
        subscribe(feed, here, headers=auth(user="ann", scopes=(READ_ANY,))) as ann,
        subscribe(feed, here, headers=auth(user="bob", scopes=(READ_ANY, READ_OWN))) as bob,
        subscribe(feed, here, headers=auth(user="boss", scopes=(READ_OWN,))) as boss,
        subscribe(feed, there, headers=auth(tenant=OTHER_TENANT, user="eve", scopes=(READ_ANY,))) as eve,
        subscribe(feed, "/companies/subscribe", headers=auth(user="cid", scopes=(READ_ANY,))) as cid,
        subscribe(feed, "/companies/subscribe", headers=auth(user="boss", scopes=(READ_OWN,))) as boss_companies,
    ):
        for reader in (ann, bob, boss, eve, cid, boss_companies):
            ready(reader)
        abroad = make_employee(theirs, user_id="abroad", salary="65000.00")
        hired = make_employee(ours, user_id="hire", salary="71000.00")
        elsewhere = make_company(tenant=OTHER_TENANT, name="Elsewhere")
        ours.name = "Ours, renamed"
        ours.save()

        (ann_hire,), (bob_hire,), (boss_hire,) = ann.changes(1), bob.changes(1), boss.changes(1)
        (eve_abroad,) = eve.changes(1)
        (cid_rename,), (boss_rename,) = cid.changes(1), boss_companies.changes(1)
        quiet = [reader.quiet(0.5) for reader in (ann, bob, boss, eve, cid, boss_companies)]

    assert ann_hire.data["object_id"] == bob_hire.data["object_id"] == boss_hire.data["object_id"] == str(hired.pk)
    assert ann_hire.data["data"]["salary"] == bob_hire.data["data"]["salary"] == "71000.00"
    assert "salary" not in boss_hire.data["data"]
    assert eve_abroad.data["object_id"] == str(abroad.pk)
    assert cid_rename.data["data"]["name"] == boss_rename.data["data"]["name"] == "Ours, renamed"
    assert quiet == [[]] * 6  # nothing else: not the other tenant's employee, not "Elsewhere"
    assert elsewhere.pk


def test_an_object_seen_by_several_classes_is_read_and_rendered_once(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = make_company(name="Seen by both")

    def narrower_for_bob(caller: Access | None) -> Q:
        assert caller is not None
        q = Q(tenant_id=caller.tenant_id)
        return q & Q(status="active") if caller.user_id == "bob" else q

    firms = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=schemas.Company,
        security=token,
        objects_filter=narrower_for_bob,
        security_scopes=SecurityScopes(get=[READ_ANY]),
        create=None,
        update=None,
        delete=False,
    )
    rendered: list[Any] = []
    real = visibility.data_body
    monkeypatch.setattr(visibility, "data_body", lambda *args: rendered.append(args) or real(*args))
    page = [event(1, company)]

    with CaptureQueriesContext(connection) as captured:
        outcomes = visibility.evaluate(
            firms, [Request("ann", access("ann"), {}, page), Request("bob", access("bob"), {}, page)]
        )

    assert received(outcomes["ann"]) == received(outcomes["bob"]) != {}
    assert len(rendered) == 1
    reads = [
        q["sql"]
        for q in captured.captured_queries
        if re.search(r'FROM "business_company(department|costcenter)"', q["sql"])
    ]
    assert len(reads) == 2  # the nested lists, once for both classes
