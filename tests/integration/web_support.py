"""A small browser stand-in for the web console and portal tests: keeps cookies, reads the
CSRF token off each page, submits forms. Runs the ASGI app in process (httpx's transport)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
from argon2 import PasswordHasher

from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.admin import web_auth
from ispbill.use_cases.admin.web_auth import add_staff
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, reseller_id_of
from ispbill.use_cases.catalog.offerings import NewClass, NewPlan, add_class, add_plan, add_reseller
from scenarios.helpers import check_books

BASE = "https://testserver"
SANDBOX_SECRET = "sandbox-test-secret-0123456789abcdef"
CARD_SECRET = "refill-card-test-secret-0123456789"
GARDEN_SECRET = "garden-test-secret-0123456789"
PASSWORD = "correct horse battery"
# Cheap argon2 parameters for tests only (the hash format records them; production uses the
# library's defaults): four users per test must not cost seconds on a shared machine.
web_auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def web_app(database_url: str, clock: FixedClock, **overrides: Any) -> App:
    settings = Settings(
        database_url=database_url,
        sandbox_secret=SANDBOX_SECRET,
        refill_card_secret=CARD_SECRET,
        garden_secret=GARDEN_SECRET,
        public_base_url=BASE,
        **overrides,
    )
    return bootstrap(settings=settings, clock=clock)


class Browser:
    def __init__(self, app: App) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 5000))
        self.cookies = httpx.Cookies()
        self.csrf = ""
        self.last: httpx.Response | None = None

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url=BASE, cookies=self.cookies
            ) as client:
                response = await client.request(method, url, **options)
                self.cookies.update(client.cookies)
                return response

        response = asyncio.run(send())
        found = (
            _TOKEN.search(response.text)
            if "html" in response.headers.get("content-type", "")
            else None
        )
        if found:
            self.csrf = found.group(1)
        self.last = response
        return response

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, data: dict[str, str] | None = None, **options: Any) -> httpx.Response:
        form = {"csrf_token": self.csrf, **(data or {})}
        return self.request("POST", url, data=form, **options)

    def follow(self, response: httpx.Response) -> httpx.Response:
        while response.status_code in (302, 303, 307):
            response = self.get(response.headers["location"].removeprefix(BASE))
        return response

    def submit(self, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        return self.follow(self.post(url, data))

    def confirm(self, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        """A destructive action as an operator does it: the post without a token shows the
        confirmation ("This will ..."), whose token the second post sends."""
        shown = self.post(url, data)
        assert shown.status_code == 200, shown.text
        assert 'id="consequence"' in shown.text
        return self.submit(url, {**(data or {}), "confirm_token": confirm_token_of(shown.text)})

    def sign_in_staff(
        self, username: str, password: str = PASSWORD, code: str = ""
    ) -> httpx.Response:
        self.get("/console/login")
        return self.submit(
            "/console/login", {"username": username, "password": password, "code": code}
        )


def confirm_token_of(html: str) -> str:
    found = re.search(r'name="confirm_token" value="([0-9a-f]+)"', html)
    assert found, "no confirmation on the page"
    return found.group(1)


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html)
    assert found, f"no #{element_id} on the page"
    return found.group(1).strip()


def offered(html: str, select_id: str) -> list[str]:
    """The values a form's ``<select>`` offers (an option without a value sends its text)."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', html, re.S)
    assert found, f"no select#{select_id} on the page"
    return [
        (value if value is not None else text).strip()
        for value, text in (
            (m.group(2), m.group(3))
            for m in re.finditer(r'<option(\s+value="([^"]*)")?[^>]*>([^<]*)</option>', found[1])
        )
    ]


def catalog(app: App, now: datetime) -> dict[str, int]:
    """A class, a 20 EUR monthly plan, two resellers and one staff user of each role."""
    ids: dict[str, int] = {}
    with app.uow() as uow:
        ids["class"] = add_class(uow, spec=NewClass(name="Home"), now=now, actor="test").id
    with app.uow() as uow:
        spec = NewPlan(name="Fiber 100", price="20", currency="EUR", download="100M", upload="20M")
        ids["plan"] = add_plan(uow, spec=spec, now=now, actor="test").id
    for name in ("North", "South"):
        with app.uow() as uow:
            ids[name] = add_reseller(uow, name=name, now=now, actor="test").id
    for username, role, reseller in [
        ("alice", "admin", None),
        ("rita", "readonly", None),
        ("nora", "reseller", "North"),
        ("sam", "reseller", "South"),
    ]:
        with app.uow() as uow:
            add_staff(
                uow,
                username=username,
                password=PASSWORD,
                role=role,
                reseller_id=reseller_id_of(uow, reseller) if reseller else None,
                now=now,
                actor="test",
            )
    return ids


@contextmanager
def console_world(database_url: str, clock: FixedClock) -> Iterator[tuple[App, dict[str, int]]]:
    """The app with ``catalog``'s class, plan, resellers and staff; the books are checked at
    the end of the test, so no page may leave them unbalanced."""
    app = web_app(database_url, clock)
    try:
        yield app, catalog(app, clock.now())
        check_books(app)
    finally:
        app.close()


def customer(
    app: App, name: str, reseller: str | None = None, currency: str = "EUR", **extra: Any
) -> int:
    """A customer of the class Home, created through the use case; returns its id."""
    with app.uow() as uow:
        spec = NewCustomer(
            name=name,
            customer_class_id=customer_class_id_of(uow, "Home"),
            currency=currency,
            reseller_id=reseller_id_of(uow, reseller) if reseller else None,
            **extra,
        )
        return add_customer(uow, spec=spec, now=app.clock.now(), actor="test").id
