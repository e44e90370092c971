"""The walled garden and the collections API over HTTP (the app in process, httpx's ASGI
transport), on both databases: a suspended non-payer opens its signed link, sees the
operator's sanitised page and the amount due, pays one month through the sandbox gateway and
is active again when the checkout page answers. The books are checked after every test."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from payments_support import BASE_URL, SANDBOX_SECRET

from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.admin.api_tokens import create_token, open_customer_session
from ispbill.use_cases.collections import collection_policy, info_pages
from ispbill.use_cases.collections.walled_garden import signed_query
from scenarios.helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    check_books,
    state,
    tick,
)

JAN1 = datetime(2026, 1, 1, 9, tzinfo=UTC)
SUSPENDED_AT = datetime(2026, 1, 30, 1, tzinfo=UTC)
GARDEN_SECRET = "garden-test-secret-0123456789"


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    settings = Settings(
        database_url=database_url,
        sandbox_secret=SANDBOX_SECRET,
        public_base_url=BASE_URL,
        garden_secret=GARDEN_SECRET,
        cookie_secure=False,  # BASE_URL is plain http
    )
    application = bootstrap(settings=settings, clock=FixedClock(JAN1))
    try:
        yield application
        check_books(application)
    finally:
        application.close()


class Client:
    """Keeps cookies and sends back the CSRF token of the last page, as a browser's form."""

    def __init__(self, app: App, token: str | None = None) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app))
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.cookies = httpx.Cookies()
        self.csrf = ""

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        if method == "POST" and url.startswith("/garden"):
            options["data"] = {"csrf_token": self.csrf, **options.get("data", {})}

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport,
                base_url=BASE_URL,
                headers=self.headers,
                cookies=self.cookies,
            ) as client:
                response = await client.request(method, url, **options)
                self.cookies.update(client.cookies)
                return response

        response = asyncio.run(send())
        found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response


def non_payer(app: App) -> tuple[int, int]:
    """A postpaid customer suspended as a non-payer on 30 January (30.00 overdue)."""
    add_class(app, JAN1)
    add_plan(app, JAN1, "Home", "30.00")
    customer = add_customer(app, JAN1, "Nina", balance_control="postpaid", invoicing_mode="forward")
    service = add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
    tick(app, JAN1)
    with app.uow() as uow:
        collection_policy.set_values(
            uow, changes={"enabled": "true"}, customer_class_id=None, now=JAN1, actor="test"
        )
    assert isinstance(app.clock, FixedClock)
    app.clock.set(SUSPENDED_AT)
    tick(app, SUSPENDED_AT)
    assert state(app, service) == ("suspended", "non_payer")
    return customer, service


def link(service: int, now: datetime, **override: str) -> str:
    query = signed_query(GARDEN_SECRET, service, now + timedelta(days=7)) | override
    return urlencode(query)


def test_a_sandbox_payment_from_the_info_page_restores_the_service(app: App) -> None:
    _customer, service = non_payer(app)
    with app.uow() as uow:
        info_pages.edit_page(
            uow,
            reason="non_payer",
            title="Pay up, please",
            body="Your invoice is **overdue**.\n\n<script>alert(1)</script>\n\n"
            "[pay](javascript:alert(1))",
            now=SUSPENDED_AT,
            actor="test",
        )
    client = Client(app)
    query = link(service, SUSPENDED_AT)
    page = client.request("GET", f"/garden?{query}")
    assert page.status_code == 200
    assert "Pay up, please" in page.text
    assert "<strong>overdue</strong>" in page.text
    assert "<script>" not in page.text, page.text
    assert 'href="javascript:' not in page.text
    assert "$30.00" in page.text
    assert "suspended" in page.text
    opened = client.request("POST", f"/garden/pay?{query}", data={"months": "1"})
    assert opened.status_code == 303
    checkout_path = urlsplit(opened.headers["location"]).path
    assert checkout_path.startswith("/sandbox/checkout/")
    paid = client.request("POST", checkout_path, data={"card_number": "4242424242424242"})
    assert paid.status_code == 200, paid.text
    assert state(app, service) == ("active", None)  # restored before the page answered
    again = client.request("GET", f"/garden?{query}")
    assert 'id="state">Service' in again.text
    assert "active" in again.text


def test_a_bad_or_expired_link_shows_nothing(app: App) -> None:
    _customer, service = non_payer(app)
    client = Client(app)
    tampered = link(service, SUSPENDED_AT, s=str(service + 1))
    assert client.request("GET", f"/garden?{tampered}").status_code == 404
    expired = urlencode(signed_query(GARDEN_SECRET, service, SUSPENDED_AT - timedelta(seconds=1)))
    assert client.request("GET", f"/garden?{expired}").status_code == 404
    assert client.request("GET", "/garden").status_code == 404
    assert client.request("POST", f"/garden/pay?{tampered}").status_code == 404


def test_the_subscriber_promises_from_the_page_once_per_period(app: App) -> None:
    _customer, service = non_payer(app)
    client = Client(app)
    query = link(service, SUSPENDED_AT)
    client.request("GET", f"/garden?{query}")
    answer = client.request("POST", f"/garden/promise?{query}")
    assert answer.status_code == 303
    assert state(app, service) == ("active", None)
    refused = client.request("POST", f"/garden/promise?{query}")
    assert refused.status_code == 422
    assert "already used once" in refused.text


def test_a_customer_session_makes_the_subscribers_promise_over_the_api(app: App) -> None:
    """A customer's own API session is the subscriber, not an operator: the policy's days,
    once per billing period, whatever ``days`` it asks for."""
    customer, service = non_payer(app)
    with app.uow() as uow:
        session = open_customer_session(
            uow, customer_id=customer, lifetime=timedelta(hours=1), now=SUSPENDED_AT, actor="t"
        )
    api = Client(app, session.plaintext)
    promised = api.request("POST", f"/api/v1/services/{service}/promise", json={"days": 14})
    assert promised.status_code == 201, promised.text
    assert promised.json()["until"].startswith("2026-02-02T01:00:00")  # 3 days, not 14
    assert state(app, service) == ("active", None)
    again = api.request("POST", f"/api/v1/services/{service}/promise", json={"days": 14})
    assert again.status_code == 409, again.text
    assert "already used once" in again.text


def test_every_reason_has_a_page_that_renders(app: App) -> None:
    with app.uow() as uow:
        pages = info_pages.list_pages(uow)
    assert {p.reason for p in pages} == set(info_pages.REASONS)
    for page in pages:
        assert page.title
        assert page.body_html.startswith("<p>")


def test_the_collections_api(app: App) -> None:
    _customer, service = non_payer(app)
    with app.uow() as uow:
        admin = create_token(uow, name="ops", role="admin", reseller_id=None, now=JAN1, actor="t")
    with app.uow() as uow:
        viewer = create_token(
            uow, name="audit", role="readonly", reseller_id=None, now=JAN1, actor="t"
        )
    api = Client(app, admin.plaintext)
    why = api.request("GET", f"/api/v1/services/{service}/why").json()
    assert why["state"] == "suspended"
    assert why["overdue_total"] == {
        "amount": "30.00",
        "currency": "USD",
    }
    promised = api.request("POST", f"/api/v1/services/{service}/promise", json={"days": 3})
    assert promised.status_code == 201, promised.text
    refused = api.request("POST", f"/api/v1/services/{service}/suspend", json={"reason": "fup"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["field"] == "reason"
    key = {"Idempotency-Key": "suspend-1"}
    made = api.request(
        "POST", f"/api/v1/services/{service}/suspend", json={"reason": "profile_3"}, headers=key
    )
    replay = api.request(
        "POST", f"/api/v1/services/{service}/suspend", json={"reason": "profile_3"}, headers=key
    )
    assert (replay.status_code, replay.json()) == (201, made.json())
    reused = api.request(
        "POST", f"/api/v1/services/{service}/suspend", json={"reason": "profile_5"}, headers=key
    )
    assert reused.status_code == 422
    assert reused.json()["field"] == "Idempotency-Key"
    assert made.status_code == 201
    assert made.json()["status"] == "active"
    twice = api.request("POST", f"/api/v1/services/{service}/suspend", json={"reason": "profile_4"})
    assert twice.status_code == 409
    lifted = api.request("POST", f"/api/v1/services/{service}/lift", json={"note": "ok"})
    assert lifted.status_code == 200
    assert lifted.json()["status"] == "lifted"
    assert lifted.json()["next_occurrence"] is None
    policy = api.request(
        "PUT", "/api/v1/collection/policy", json={"changes": {"days_after_due": "-3"}}
    )
    assert policy.status_code == 422
    assert policy.json()["field"] == "days_after_due"
    off = api.request("PUT", "/api/v1/collection/policy", json={"changes": {"enabled": "false"}})
    assert off.status_code == 200
    assert off.json()["policy"]["enabled"] is False
    assert state(app, service) == ("active", None)
    page = api.request(
        "PUT", "/api/v1/pages/profile_3", json={"title": "Abuse", "body_markdown": "*Stop*"}
    )
    assert page.json()["body_html"] == "<p><em>Stop</em></p>\n"
    assert api.request("GET", "/api/v1/pages/bogus").status_code == 422
    readonly = Client(app, viewer.plaintext)
    assert readonly.request("GET", "/api/v1/pages").status_code == 200
    assert (
        readonly.request(
            "PUT", "/api/v1/pages/profile_3", json={"title": "x", "body_markdown": "y"}
        ).status_code
        == 403
    )


def test_the_api_lifts_one_summer_or_the_whole_repetition(app: App) -> None:
    _customer, service = non_payer(app)
    with app.uow() as uow:
        admin = create_token(uow, name="ops", role="admin", reseller_id=None, now=JAN1, actor="t")
    api = Client(app, admin.plaintext)
    window = {"starts_on": "2026-07-01", "ends_on": "2026-08-31", "repeat_yearly": True}
    made = api.request(
        "POST", f"/api/v1/services/{service}/suspend", json={"reason": "profile_1", **window}
    )
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "planned"
    lifted = api.request("POST", f"/api/v1/services/{service}/lift", json={})
    assert lifted.status_code == 200, lifted.text
    following = lifted.json()["next_occurrence"]
    assert (following["starts_on"], following["status"]) == ("2027-07-01", "planned")
    ended = api.request("POST", f"/api/v1/services/{service}/lift", json={"end_repetition": True})
    assert ended.status_code == 200, ended.text
    assert (ended.json()["id"], ended.json()["next_occurrence"]) == (following["id"], None)
    none_left = api.request("POST", f"/api/v1/services/{service}/lift", json={})
    assert none_left.status_code == 422
