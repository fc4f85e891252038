"""What the change feed delivers, and to whom (``djfapi.live``), on the demo over SSE.

Every test subscribes for real (a ``TestClient`` stream on ``transactional_db``), writes
through the API or straight through the ORM, and reads the frames. "Nothing was
delivered" is shown with a marker: streams handle events in id order, so once a later
event the subscriber may see has arrived, every earlier one was dealt with.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from fastapi import FastAPI
from fastapi.testclient import TestClient

from djfapi.live import publish
from djfapi.live.capture import Change
from djfapi.live.models import ChangeEvent
from djfapi.live.registry import remove_reaction
from djfapi.routing.django import DjangoRouterSchema, SecurityScopes
from testproject.api import companies, company_objects_filter, token
from testproject.business import schemas
from testproject.business.models import Company, CompanyDepartment, Employee
from tests.factories import make_company, make_department, make_employee
from tests.helpers import OTHER_TENANT, TENANT, USER, auth
from tests.livefeed import FAST, SSEReader, feed_client, ready, subscribe

READ_ANY = ("business.companies.read.any",)
READ_OWN = ("business.companies.read.own",)


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def rename(company: Company, name: str) -> None:
    company.name = name
    company.save()


def marker(reader: SSEReader, company: Company) -> None:
    """Change ``company`` (visible to the reader) and wait for it: everything before was handled."""
    rename(company, f"marker {ChangeEvent.objects.count()}")
    (frame,) = reader.changes(1)
    assert frame.data["object_id"] == str(company.pk), f"an earlier event was delivered: {frame.data}"


# -- events and their data ----------------------------------------------------------------


def test_api_writes_arrive_as_insert_update_delete_with_get_bodies(feed: TestClient) -> None:
    company = make_company()
    path = f"/companies/{company.pk}/departments"

    with subscribe(feed, f"{path}/subscribe", headers=auth()) as reader:
        start = ready(reader).id
        # One write per event: data is rendered at delivery, so an UPDATE whose row is
        # already deleted when the stream gets to it is skipped (the DELETE follows).
        created = feed.post(path, json={"name": "Ops", "budget": "10.50"}, headers=auth()).json()
        (insert,) = reader.changes(1)
        updated = feed.patch(f"{path}/{created['id']}", json={"name": "Operations"}, headers=auth()).json()
        (update,) = reader.changes(1)
        assert feed.delete(f"{path}/{created['id']}", headers=auth()).status_code == 204
        (delete,) = reader.changes(1)

    assert [f.event for f in (insert, update, delete)] == ["INSERT", "UPDATE", "DELETE"]
    assert start < insert.id < update.id < delete.id
    for frame in (insert, update, delete):
        assert frame.data["id"] == frame.id
        assert frame.data["event"] == frame.event
        assert frame.data["object_id"] == created["id"]
    assert update.data["data"] == updated
    assert insert.data["data"]["company_id"] == str(company.pk)
    assert "data" not in delete.data


def test_an_update_of_a_row_deleted_before_delivery_is_skipped_and_the_delete_follows(feed: TestClient) -> None:
    company = make_company()
    department = make_department(company)
    path = f"/companies/{company.pk}/departments/subscribe"

    with subscribe(feed, path, headers=auth()) as reader:
        ready(reader)
        with transaction.atomic():  # both events commit at once: the row is gone before either is read
            department.name = "renamed, then deleted"
            department.save()
            department_id = str(department.pk)
            department.delete()
        (frame,) = reader.changes(1)
        assert reader.quiet(0.5) == []

    assert (frame.event, frame.data["object_id"]) == ("DELETE", department_id)
    assert "data" not in frame.data


def test_field_scopes_apply_to_each_subscribers_data(feed: TestClient) -> None:
    company = make_company()
    make_employee(company, user_id=USER, role=Employee.Type.OWNER)
    path = f"/companies/{company.pk}/employees/subscribe"

    with (
        subscribe(feed, path, headers=auth(scopes=READ_ANY)) as any_reader,
        subscribe(feed, path, headers=auth(scopes=READ_OWN)) as own_reader,
    ):
        ready(any_reader), ready(own_reader)
        hired = make_employee(company, user_id="new-hire", salary="71000.00")
        (as_any,) = any_reader.changes(1)
        (as_owner,) = own_reader.changes(1)

    assert as_any.id == as_owner.id
    assert as_any.data["data"]["salary"] == "71000.00"
    assert "salary" not in as_owner.data["data"]  # left out, as GET leaves it out
    assert (
        as_owner.data["data"]
        == feed.get(f"/companies/{company.pk}/employees/{hired.pk}", headers=auth(scopes=READ_OWN)).json()
    )


def test_a_soft_delete_is_a_delete_without_data_and_a_restore_an_insert(feed: TestClient) -> None:
    company, other = make_company(), make_company(name="Other")

    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        ready(reader)
        assert feed.delete(f"/companies/{company.pk}", headers=auth()).status_code == 204
        (deleted,) = reader.changes(1)
        company = Company.objects.get(pk=company.pk)
        rename(company, "edited while deleted")  # an UPDATE of a row readers cannot see: not delivered
        marker(reader, other)
        company.status = Company.Status.ACTIVE
        company.save()
        (restored,) = reader.changes(1)

    assert (deleted.event, deleted.data["object_id"]) == ("DELETE", str(company.pk))
    assert "data" not in deleted.data
    assert ChangeEvent.objects.get(id=deleted.id).action == "DELETE"
    assert (restored.event, restored.data["data"]["name"]) == ("INSERT", "edited while deleted")


def test_changes_under_another_parent_are_not_delivered(feed: TestClient) -> None:
    company, sibling = make_company(), make_company(name="Sibling")
    mine = make_department(company)

    with subscribe(feed, f"/companies/{company.pk}/departments/subscribe", headers=auth()) as reader:
        ready(reader)
        make_department(sibling, name="Elsewhere")
        mine.name = "Mine"
        mine.save()
        (frame,) = reader.changes(1)

    assert frame.data["object_id"] == str(mine.pk)


# -- what is published: committed ORM changes, wherever they come from ------------------------------


def test_a_rolled_back_write_publishes_nothing(feed: TestClient) -> None:
    company = make_company()
    before = ChangeEvent.objects.count()

    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        ready(reader)
        with pytest.raises(RuntimeError), transaction.atomic():
            make_company(name="Never")
            rename(company, "Never either")
            raise RuntimeError("roll back")
        conflict = feed.post(
            f"/companies/{company.pk}/employees", json={"user_id": "u", "hired_at": "2024-01-01"}, headers=auth()
        )
        duplicate = feed.post(
            f"/companies/{company.pk}/employees", json={"user_id": "u", "hired_at": "2024-01-01"}, headers=auth()
        )
        assert (conflict.status_code, duplicate.status_code) == (201, 409)
        assert ChangeEvent.objects.count() == before + 1  # the employee; nothing of the rollbacks
        marker(reader, company)

    company.refresh_from_db()
    assert company.name.startswith("marker")


def test_orm_writes_outside_the_api_are_published_and_update_needs_publish(feed: TestClient) -> None:
    with subscribe(feed, "/companies/subscribe", headers=auth()) as reader:
        ready(reader)
        company = Company.objects.create(tenant_id=TENANT, name="From the shell")
        (inserted,) = reader.changes(1)

        Company.objects.filter(pk=company.pk).update(name="Bulk")  # no signal: not published ...
        marker_company = make_company(name="Marker")
        (frame,) = reader.changes(1)
        assert frame.data["object_id"] == str(marker_company.pk)

        with transaction.atomic():  # ... until published by hand
            Company.objects.filter(pk=company.pk).update(name="Bulk, published")
            event_id = publish(Company, company.pk)
        (updated,) = reader.changes(1)

        (bulk,) = Company.objects.bulk_create([Company(tenant_id=TENANT, name="Bulk created")])
        publish(bulk, action="INSERT")
        (bulk_inserted,) = reader.changes(1)

        company_id = str(company.pk)
        company.delete()  # a hard delete, through the ORM
        (deleted,) = reader.changes(1)

    assert (inserted.event, inserted.data["data"]["name"]) == ("INSERT", "From the shell")
    assert (updated.id, updated.event, updated.data["data"]["name"]) == (event_id, "UPDATE", "Bulk, published")
    assert (bulk_inserted.event, bulk_inserted.data["object_id"]) == ("INSERT", str(bulk.pk))
    assert (deleted.event, deleted.data["object_id"]) == ("DELETE", company_id)


def test_publish_refuses_models_nobody_subscribes_to_and_unknown_actions(transactional_db: None) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from testproject.business.models import CompanyCostcenter

    company = make_company()
    with pytest.raises(ImproperlyConfigured, match="subscribe=True"):
        publish(CompanyCostcenter, 1)
    with pytest.raises(ValueError, match="action"):
        publish(company, action="UPSERT")


# -- who receives what ------------------------------------------------------------------------


def test_own_scope_receives_only_companies_the_caller_owns(feed: TestClient) -> None:
    owned, foreign = make_company(name="Owned"), make_company(name="Not owned")
    make_employee(owned, user_id=USER, role=Employee.Type.OWNER)

    with subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_OWN)) as reader:
        ready(reader)
        rename(foreign, "still not owned")
        marker(reader, owned)
        make_employee(foreign, user_id=USER, role=Employee.Type.ADMIN)  # now it is the caller's
        rename(foreign, "administered")
        (frame,) = reader.changes(1)

    assert (frame.data["object_id"], frame.data["data"]["name"]) == (str(foreign.pk), "administered")


def test_no_event_of_another_tenant_reaches_a_subscriber_under_concurrent_writers(feed: TestClient) -> None:
    rounds = 15
    seeds = {tenant: make_company(tenant=tenant, name=f"seed {tenant}") for tenant in (TENANT, OTHER_TENANT)}
    make_employee(seeds[TENANT], user_id=USER, role=Employee.Type.OWNER)
    written: dict[str, list[str]] = {TENANT: [], OTHER_TENANT: []}
    errors: list[BaseException] = []

    def writer(tenant: str) -> None:
        try:
            for number in range(rounds):
                with transaction.atomic():
                    company = make_company(tenant=tenant, name=f"{tenant} {number}")
                    make_department(company)
                    rename(company, f"{tenant} {number} renamed")
                written[tenant] += [str(company.pk)]
                response = feed.patch(
                    f"/companies/{seeds[tenant].pk}", json={"name": f"api {number}"}, headers=auth(tenant=tenant)
                )
                assert response.status_code == 200
        except BaseException as error:
            errors.append(error)

    with (
        subscribe(feed, "/companies/subscribe", headers=auth(tenant=TENANT, scopes=READ_ANY)) as reader_a,
        subscribe(feed, "/companies/subscribe", headers=auth(tenant=OTHER_TENANT, scopes=READ_ANY)) as reader_b,
        subscribe(feed, "/companies/subscribe", headers=auth(tenant=TENANT, scopes=READ_OWN)) as reader_own,
    ):
        for reader in (reader_a, reader_b, reader_own):
            ready(reader)
        threads = [threading.Thread(target=writer, args=(tenant,)) for tenant in (TENANT, OTHER_TENANT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        # Concurrent writers commit ids out of order and a gap waits for its writers; allow
        # for a busy machine: this test is about who receives what, not how fast.
        received = {TENANT: reader_a.changes(3 * rounds, 40), OTHER_TENANT: reader_b.changes(3 * rounds, 40)}
        owned = reader_own.changes(rounds, 40)  # only the seed it owns: its API renames

    for tenant, frames in received.items():
        assert {frame.data["data"]["tenant_id"] for frame in frames} == {tenant}
        ids = [frame.id for frame in frames]
        assert ids == sorted(set(ids))  # in order, no duplicates
        assert {f.data["object_id"] for f in frames} == {*written[tenant], str(seeds[tenant].pk)}
    assert {frame.data["object_id"] for frame in owned} == {str(seeds[TENANT].pk)}


# -- hard deletes: the rule when the row cannot be asked any more -----------------------------------


@pytest.fixture
def firms_client(feed: TestClient) -> Iterator[TestClient]:
    """A tree with a custom row filter and hard deletes: companies as "firms"."""
    from djfapi.errors import install_error_handlers

    firms = DjangoRouterSchema(
        name="firms",
        model=Company,
        get=schemas.Company,
        security=token,
        security_scopes=SecurityScopes(get=["business.companies.read.any", "business.companies.read.own"]),
        objects_filter=company_objects_filter,
        create=None,
        update=None,
        delete=False,
        subscribe=True,
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(firms.router)
    with TestClient(app) as client:
        yield client


def test_a_hard_delete_under_a_custom_filter_reaches_only_streams_that_showed_the_object(
    firms_client: TestClient,
) -> None:
    shown, unseen = make_company(name="Shown"), make_company(name="Unseen")
    make_employee(shown, user_id=USER, role=Employee.Type.OWNER)
    make_employee(unseen, user_id=USER, role=Employee.Type.OWNER)

    with subscribe(firms_client, "/firms/subscribe", headers=auth(scopes=READ_OWN)) as reader:
        ready(reader)
        rename(shown, "seen once")
        reader.changes(1)
        Company.objects.get(pk=unseen.pk).delete()  # never shown on this stream: the filter can't be asked
        Company.objects.get(pk=shown.pk).delete()
        (deleted,) = reader.changes(1)

    assert (deleted.event, deleted.data["object_id"]) == ("DELETE", str(shown.pk))


def test_a_hard_delete_without_a_custom_filter_needs_the_tenant_and_a_visible_parent(feed: TestClient) -> None:
    company, sibling = make_company(), make_company(name="Sibling")
    staff = make_employee(company, user_id="leaver")
    other = make_employee(sibling, user_id="elsewhere")
    staff_id = str(staff.pk)

    with subscribe(feed, f"/companies/{company.pk}/employees/subscribe", headers=auth()) as reader:
        ready(reader)
        other.delete()  # another parent: not for this path
        staff.delete()  # never shown, but the parent in the path is visible: delivered
        (deleted,) = reader.changes(1)

    assert (deleted.event, deleted.data["object_id"]) == ("DELETE", staff_id)
    assert ChangeEvent.objects.filter(model="business.employee", action="DELETE").count() == 2


def test_a_hard_deleted_row_of_another_tenant_is_never_delivered(feed: TestClient) -> None:
    mine, theirs = make_company(name="Mine"), make_company(tenant=OTHER_TENANT, name="Theirs")

    with subscribe(feed, "/companies/subscribe", headers=auth(scopes=READ_ANY)) as reader:
        ready(reader)
        theirs.delete()
        marker(reader, mine)


# -- server-side reactions ----------------------------------------------------------------------


def test_on_change_runs_after_commit_with_the_unfiltered_view(feed: TestClient) -> None:
    seen: list[tuple[Change, bool, str]] = []

    def react(change: Change) -> None:
        seen.append((change, transaction.get_connection().in_atomic_block, threading.current_thread().name))

    companies.on_change(react)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            make_company(name="Rolled back")
            raise RuntimeError
        assert seen == []
        with transaction.atomic():
            company = make_company(tenant=OTHER_TENANT, name="Committed")
            assert seen == []  # not before commit
        feed.delete(f"/companies/{company.pk}", headers=auth(tenant=OTHER_TENANT))
    finally:
        remove_reaction(companies, react)

    (insert, _, _), (delete, in_atomic, _) = seen
    assert (insert.action, insert.object_id, insert.tenant_id) == ("INSERT", str(company.pk), OTHER_TENANT)
    assert insert.model is Company and insert.instance is not None and insert.instance.name == "Committed"
    assert delete.action == "DELETE" and delete.id > insert.id
    assert in_atomic is False  # after the API's transaction committed


def test_on_change_refuses_async_reactions() -> None:
    from djfapi.orm.mapping import SchemaDefinitionError

    async def react(change: Change) -> None:
        pass

    with pytest.raises(SchemaDefinitionError, match="plain 'def'"):
        companies.on_change(react)


def test_a_failing_reaction_does_not_fail_the_committed_write(feed: TestClient, caplog: Any) -> None:
    def broken(change: Change) -> None:
        raise ValueError("reaction bug")

    companies.on_change(broken)
    try:
        response = feed.post("/companies", json={"name": "Still created"}, headers=auth())
    finally:
        remove_reaction(companies, broken)

    assert response.status_code == 201
    assert Company.objects.filter(name="Still created").exists()
    assert "reaction bug" in caplog.text


def test_departments_of_the_demo_are_captured_too(transactional_db: None) -> None:
    department = make_department(make_company())

    event = ChangeEvent.objects.get(model="business.companydepartment")
    assert (event.action, event.object_id, event.tenant_id) == ("INSERT", str(department.pk), None)
    assert event.refs == {"company_id": str(department.company_id)}
    assert CompanyDepartment._meta.label_lower == event.model
    assert FAST  # the fast settings are what the stream tests use
