"""Customer e-mail made visible, on both databases: ``GET /api/v1/notifications`` and
``POST /api/v1/notifications/{id}/retry``, the console's ``/console/notifications`` page (its
filters, keyset pages, CSV and "Retry now") and the customer page's e-mails. Messages go
through the real sender with a relay that refuses one address for good, so "failed" is what
the sender wrote. Each role is held to its reach: read-only users never retry, a reseller's
user sees its own customers' messages only (anyone else's is a 404), only an admin retries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Api, World, api_app, customer_body, make_world, open_session
from notification_support import REFUSED, Relay, count, queue, requeued, send_due, state
from test_engine_cli import runner
from web_support import Browser, console_world, customer

from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.queries.operator_lists import PAGE_SIZE

# -- the API --------------------------------------------------------------------------------------


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        yield app, make_world(app)
    finally:
        app.close()


def outbox(app: App, world: World) -> dict[str, int]:
    """North's customer with a sent, a failed and a queued message; South's with a failed."""
    admin = Api(app, world.tokens["ops"])
    ids = {
        "north": admin.post("/api/v1/customers", json=customer_body("N1", reseller="North")).json()[
            "id"
        ],
        "south": admin.post("/api/v1/customers", json=customer_body("S1", reseller="South")).json()[
            "id"
        ],
    }
    ids["sent"] = queue(app, ids["north"], "n1@example.net", "1")
    ids["failed"] = queue(app, ids["north"], REFUSED, "2")
    ids["south_failed"] = queue(app, ids["south"], REFUSED, "3")
    send_due(app)
    ids["queued"] = queue(app, ids["north"], "n1@example.net", "4")
    return ids


def walk(client: Api, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(
            "/api/v1/notifications",
            params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_the_api_lists_notifications_in_each_callers_reach(api: tuple[App, World]) -> None:
    app, world = api
    ids = outbox(app, world)
    admin = Api(app, world.tokens["ops"])
    every = walk(admin)
    assert [n["id"] for n in every] == [
        ids["queued"],
        ids["south_failed"],
        ids["failed"],
        ids["sent"],
    ]
    failed = next(n for n in every if n["id"] == ids["failed"])
    assert failed["status"] == "failed"
    assert failed["recipients"] == [REFUSED]
    assert failed["attempts"] == 1
    assert failed["last_error"] == "550 5.1.1 no such mailbox"
    assert failed["subject"] == "Payment reminder: $30.00 overdue"
    assert failed["next_attempt_at"] is None
    sent = next(n for n in every if n["id"] == ids["sent"])
    assert sent["status"] == "sent"
    assert sent["sent_at"] is not None
    assert {n["id"] for n in walk(admin, status="failed")} == {ids["failed"], ids["south_failed"]}
    assert {n["id"] for n in walk(admin, customer_id=ids["north"])} == {
        ids["sent"],
        ids["failed"],
        ids["queued"],
    }
    assert len(walk(admin, kind="collection.reminder")) == 4
    assert walk(admin, kind="invoice.issued") == []
    assert admin.get("/api/v1/notifications?status=lost").status_code == 422
    readonly = Api(app, world.tokens["auditor"])
    assert len(walk(readonly)) == 4
    north = Api(app, world.tokens["north"])
    assert {n["customer_id"] for n in walk(north)} == {ids["north"]}
    assert len(walk(north)) == 3
    hidden = north.get("/api/v1/notifications", params={"customer_id": ids["south"]})
    assert hidden.status_code == 404
    assert [n["id"] for n in walk(Api(app, world.tokens["south"]))] == [ids["south_failed"]]
    open_session(app, world, "portal", ids["north"])
    portal = Api(app, world.tokens["portal"]).get("/api/v1/notifications")
    assert portal.status_code == 403


def test_an_admin_queues_a_failed_notification_again(api: tuple[App, World]) -> None:
    app, world = api
    ids = outbox(app, world)
    admin = Api(app, world.tokens["ops"])

    def retry(client: Api, notification_id: int, reason: str = "address fixed") -> Any:
        return client.post(
            f"/api/v1/notifications/{notification_id}/retry", json={"reason": reason}
        )

    # refusals: nothing written
    for role, target, status in [
        ("auditor", ids["failed"], 403),
        ("north", ids["failed"], 403),
        ("north", ids["south_failed"], 404),
        ("south", ids["failed"], 404),
    ]:
        refused = retry(Api(app, world.tokens[role]), target)
        assert refused.status_code == status, (role, refused.text)
    absent = retry(admin, 999999)
    assert absent.status_code == 404
    assert absent.json()["field"] == "notification"
    hidden = retry(Api(app, world.tokens["south"]), ids["failed"])
    assert hidden.json()["detail"] == absent.json()["detail"].replace("999999", str(ids["failed"]))
    for target, words in [(ids["sent"], "already sent"), (ids["queued"], "already queued")]:
        conflict = retry(admin, target)
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["field"] == "status"
        assert words in conflict.json()["detail"]
    blank = retry(admin, ids["failed"], "   ")
    assert blank.status_code == 422
    assert blank.json()["field"] == "reason"
    assert state(app, ids["failed"]) == ("failed", 1)
    assert state(app, ids["sent"])[0] == "sent"
    assert requeued(app) == []
    # success: back in the queue, due now, then delivered by the sender
    done = retry(admin, ids["failed"], "the customer gave a new address")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "pending"
    assert done.json()["attempts"] == 0
    assert done.json()["next_attempt_at"] is not None
    [event] = requeued(app)
    assert event.actor.startswith("api:ops#")
    assert event.reason == "the customer gave a new address"
    assert event.customer_id == ids["north"]
    assert event.figures["notification"] == ids["failed"]
    assert event.figures["error"] == "550 5.1.1 no such mailbox"
    assert retry(admin, ids["failed"]).status_code == 409
    assert state(app, ids["south_failed"]) == ("failed", 1)
    send_due(app)  # the same address is refused again: failed after one new attempt
    assert state(app, ids["failed"]) == ("failed", 1)
    assert state(app, ids["queued"]) == ("sent", 1)


# -- the console ----------------------------------------------------------------------------------


@pytest.fixture
def web(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    with console_world(database_url, clock) as world:
        yield world


def console_outbox(app: App) -> dict[str, int]:
    ids = {
        "north": customer(app, "North Mailed", reseller="North"),
        "south": customer(app, "South Mailed", reseller="South"),
    }
    ids["sent"] = queue(app, ids["north"], "north@example.net", "1")
    ids["failed"] = queue(app, ids["north"], REFUSED, "2")
    ids["south_failed"] = queue(app, ids["south"], REFUSED, "3")
    ids["south_sent"] = queue(app, ids["south"], "south@example.net", "4")
    send_due(app)
    return ids


def rows(browser: Browser, query: str = "") -> list[dict[str, str]]:
    response = browser.get(f"/console/notifications?format=csv{query}")
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.text)))


def test_the_console_lists_notifications_with_filters_and_csv(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    ids = console_outbox(app)
    alice = Browser(app)
    alice.sign_in_staff("alice")
    page = alice.get("/console/notifications")
    assert page.status_code == 200
    assert 'href="/console/notifications"' in page.text  # the nav link
    for address in ("north@example.net", "south@example.net", REFUSED):
        assert address in page.text
    assert "Payment reminder: €30.00 overdue" in page.text
    assert "550 5.1.1 no such mailbox" in page.text
    assert f'action="/console/notifications/{ids["failed"]}/retry"' in page.text
    assert f'action="/console/notifications/{ids["sent"]}/retry"' not in page.text
    failed = alice.get("/console/notifications?status=failed").text
    assert "north@example.net" not in failed
    assert REFUSED in failed
    bad = alice.get("/console/notifications?status=lost")
    assert bad.status_code == 422
    assert "status: must be one of pending, sent, failed" in bad.text
    everything = rows(alice)
    assert [r["id"] for r in everything] == [
        str(ids[k]) for k in ("south_sent", "south_failed", "failed", "sent")
    ]
    first = everything[2]
    assert first["customer_name"] == "North Mailed"
    assert first["status"] == "failed"
    assert first["subject"] == "Payment reminder: €30.00 overdue"
    assert first["last_error"] == "550 5.1.1 no such mailbox"
    assert {r["id"] for r in rows(alice, f"&customer={ids['north']}")} == {
        str(ids["sent"]),
        str(ids["failed"]),
    }
    customer_page = alice.get(f"/console/customers/{ids['north']}").text
    section = customer_page[customer_page.index('id="emails"') :]
    assert "north@example.net" in section
    assert "south@example.net" not in section
    assert "550 5.1.1 no such mailbox" in section


def test_a_reseller_sees_only_its_customers_notifications(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    ids = console_outbox(app)
    nora = Browser(app)
    nora.sign_in_staff("nora")
    page = nora.get("/console/notifications").text
    assert "north@example.net" in page
    assert "south@example.net" not in page
    assert "/retry" not in page  # only an admin retries
    assert {r["customer_id"] for r in rows(nora)} == {str(ids["north"])}
    assert nora.get(f"/console/notifications?customer={ids['south']}").status_code == 404
    assert (
        nora.post(
            f"/console/notifications/{ids['south_failed']}/retry", {"reason": "x"}
        ).status_code
        == 404
    )
    assert (
        nora.post(f"/console/notifications/{ids['failed']}/retry", {"reason": "x"}).status_code
        == 403
    )
    assert nora.post("/console/notifications/999999/retry", {"reason": "x"}).status_code == 404
    assert state(app, ids["failed"]) == ("failed", 1)
    assert state(app, ids["south_failed"]) == ("failed", 1)
    assert requeued(app) == []


def test_an_admin_retries_a_failed_notification_from_the_console(
    web: tuple[App, dict[str, int]],
) -> None:
    app, _ = web
    ids = console_outbox(app)
    rita = Browser(app)
    rita.sign_in_staff("rita")
    listing = rita.get("/console/notifications")
    assert listing.status_code == 200
    assert "/retry" not in listing.text
    refused = rita.post(f"/console/notifications/{ids['failed']}/retry", {"reason": "x"})
    assert refused.status_code == 403
    alice = Browser(app)
    alice.sign_in_staff("alice")
    alice.get("/console/notifications")
    sent = alice.post(f"/console/notifications/{ids['sent']}/retry", {"reason": "again"})
    assert sent.status_code == 422
    assert f"status: notification {ids['sent']} is already sent" in sent.text
    blank = alice.post(f"/console/notifications/{ids['failed']}/retry", {"reason": " "})
    assert blank.status_code == 422
    assert "reason: required" in blank.text
    assert state(app, ids["failed"]) == ("failed", 1)
    assert state(app, ids["sent"])[0] == "sent"
    assert requeued(app) == []
    done = alice.submit(
        f"/console/notifications/{ids['failed']}/retry", {"reason": "mailbox created"}
    )
    assert done.status_code == 200
    assert state(app, ids["failed"]) == ("pending", 0)
    [event] = requeued(app)
    assert event.actor.startswith("staff:alice#")
    assert event.reason == "mailbox created"
    relay = send_due(app, Relay())
    assert relay.sent == []  # the relay still refuses that address: failed again, not lost
    assert state(app, ids["failed"]) == ("failed", 1)


def test_the_console_pages_notifications_by_keyset(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    owner = customer(app, "Many Mails", reseller="North")
    first = queue(app, owner, "m0@example.net", "k0")
    for i in range(1, PAGE_SIZE + 1):
        queue(app, owner, f"m{i}@example.net", f"k{i}")
    assert count(app) == PAGE_SIZE + 1
    alice = Browser(app)
    alice.sign_in_staff("alice")
    page = alice.get("/console/notifications").text
    assert f'id="notification-{first}"' not in page
    assert 'id="next"' in page
    following = page.split('id="next" href="')[1].split('"')[0].replace("&amp;", "&")
    second = alice.get(following).text
    assert f'id="notification-{first}"' in second
    assert 'id="next"' not in second
    assert len(rows(alice)) == PAGE_SIZE + 1


def test_the_cli_retries_with_the_same_use_case(web: tuple[App, dict[str, int]]) -> None:
    app, _ = web
    ids = console_outbox(app)
    url = str(app.engine.url.render_as_string(hide_password=False))
    retry = ["--database-url", url, "notifications", "retry"]
    refused = runner.invoke(cli, [*retry, str(ids["sent"]), "--reason", "again"])
    assert refused.exit_code == 2
    assert "status: notification" in refused.stderr
    absent = runner.invoke(cli, [*retry, str(2**40), "--reason", "again"])
    assert absent.exit_code == 2
    assert state(app, ids["failed"]) == ("failed", 1)
    done = runner.invoke(cli, [*retry, str(ids["failed"]), "--reason", "relay fixed"])
    assert done.exit_code == 0, done.output
    assert state(app, ids["failed"]) == ("pending", 0)
    [event] = requeued(app)
    assert (event.actor, event.reason) == ("admin:cli", "relay fixed")
