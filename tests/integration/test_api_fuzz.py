"""Schemathesis against the live API (uvicorn, PostgreSQL): every operation of the published
contract is called with generated requests, valid ones and invalid ones, as an admin. No
answer may be a server error, and every answer must match the contract (status documented,
body of the documented schema, problem+json for refusals).

Bounded (``EXAMPLES`` valid and ``NEGATIVE`` invalid requests per operation, derandomized) so it
takes a minute or two; ``ISPBILL_FUZZ_EXAMPLES`` raises the bound for a longer hunt.

The inputs that once reached the database or the JSON parser (a NUL character, JSON nested a
thousand levels deep, an oversized body) are also sent by hand, on both databases: each is
refused (422 naming the field, 413) before a route runs, in the API and the web pages alike.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from api_support import (
    PLAN,
    PROBLEM,
    Api,
    api_app,
    customer_body,
    live_server,
    make_world,
    open_session,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from notification_support import REFUSED, queue, send_due
from schemathesis import checks as registered
from schemathesis.generation import GenerationMode
from sqlalchemy import create_engine, func, select, text
from web_support import Browser, console_world

from ispbill.adapters.db.models import Base, Customer, Event
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books

log = logging.getLogger(__name__)
EXAMPLES = int(os.environ.get("ISPBILL_FUZZ_EXAMPLES", "15"))
NEGATIVE = max(3, EXAMPLES // 3)
# No shrinking: a failure is reported as found (with its request); the bound stays a bound.
PHASES = [Phase.explicit, Phase.generate]


@pytest.fixture
def fuzz_app(postgres_url: str, clock: FixedClock) -> Iterator[App]:
    engine = create_engine(postgres_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    app = api_app(postgres_url, clock)
    try:
        yield app
    finally:
        app.close()


def seed(app: App) -> str:
    """A few of everything, so generated ids often name real rows; returns the admin token."""
    world = make_world(app)
    admin = Api(app, world.tokens["ops"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()["id"]
    for n in range(3):
        customer = admin.post("/api/v1/customers", json=customer_body(f"C{n}")).json()["id"]
        admin.post("/api/v1/services", json={"customer_id": customer, "plan_id": plan})
        admin.post(
            "/api/v1/payments",
            json={"customer_id": customer, "amount": "45.00", "currency": "USD"},
            headers={"Idempotency-Key": f"seed-{n}"},
        )
        queue(app, customer, REFUSED if n else f"c{n}@example.net", f"seed-{n}")
    send_due(app)  # one sent, two failed: a retry may be answered 200 or 409
    admin.post("/api/v1/ticks/run", json={})
    admin.post("/api/v1/refill-card-batches", json={"count": 3, "value": "10", "currency": "USD"})
    open_session(app, world, "portal", 1)
    return world.tokens["ops"]


def checks() -> list[Any]:
    """Schemathesis's own checks (registered by name in ``schemathesis.checks``)."""

    return [
        registered.not_a_server_error,
        registered.status_code_conformance,
        registered.content_type_conformance,
        registered.response_schema_conformance,
    ]


def exerciser(
    operation: Any,
    mode: GenerationMode,
    count: int,
    base: str,
    auth: dict[str, str],
    statuses: Counter[int],
) -> Callable[[], None]:
    """A Hypothesis test that sends ``count`` generated requests to one operation."""
    valid = mode is GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        phases=PHASES,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base, headers=auth, timeout=60)
        if valid:
            statuses[response.status_code] += 1
        case.validate_response(response, checks=checks())

    return run  # type: ignore[no-any-return]


@pytest.mark.postgres_only
def test_schemathesis_finds_no_failure(fuzz_app: App) -> None:
    token = seed(fuzz_app)
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    with live_server(fuzz_app) as base:
        schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 40
        for operation in operations:
            for mode, count in (
                (GenerationMode.POSITIVE, EXAMPLES),
                (GenerationMode.NEGATIVE, NEGATIVE),
            ):
                run = exerciser(operation, mode, count, base, auth, statuses)
                started = time.monotonic()
                try:
                    run()
                except Unsatisfiable:  # no invalid request exists (e.g. no parameters at all)
                    pass
                except Exception as exc:  # collect every operation's failure, then report all
                    failures.append(f"{operation.label} [{mode.value}]: {exc}")
                log.info("%s [%s] %.1fs", operation.label, mode.value, time.monotonic() - started)
    check_books(fuzz_app)
    assert not failures, "\n\n".join(failures)
    log.info("answers by status: %s", dict(sorted(statuses.items())))
    # the valid requests reached the routes (authenticated), not only the refusals
    assert statuses[401] == 0
    assert sum(n for status, n in statuses.items() if status < 300) > 100


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, Api]]:
    app = api_app(database_url, clock)
    try:
        yield app, Api(app, make_world(app).tokens["ops"])
    finally:
        app.close()


def written(app: App) -> tuple[int, int]:
    with app.uow() as uow:
        return (
            int(uow.session.scalar(select(func.count()).select_from(Customer)) or 0),
            int(uow.session.scalar(select(func.count()).select_from(Event)) or 0),
        )


NUL = "must not contain NUL characters"


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("GET", "/api/v1/collection/policy?customer_class=%00", None, "customer_class"),
        ("GET", "/api/v1/customers?search=a%00b", None, "search"),
        ("GET", "/api/v1/pages/%00", None, "reason"),
        (
            "POST",
            "/api/v1/customers",
            customer_body("Nul", customer_class="Res\x00"),
            "customer_class",
        ),
        ("POST", "/api/v1/customers", {**customer_body("Nul"), "tags": {"x\x00": 1}}, "tags"),
    ],
    ids=["query", "search", "path", "json-string", "json-key"],
)
def test_a_nul_character_anywhere_is_a_422_naming_the_field(
    api: tuple[App, Api], method: str, url: str, body: dict[str, Any] | None, field: str
) -> None:
    app, client = api
    before = written(app)
    answer = client.request(method, url, json=body)
    assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM)
    assert (answer.json()["field"], answer.json()["rule"]) == (field, NUL)
    assert written(app) == before


def test_deep_or_huge_json_is_refused_before_it_is_parsed(api: tuple[App, Api]) -> None:
    app, client = api
    before = written(app)
    deep = client.post(
        "/api/v1/customers",
        content=b'{"name": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert (deep.status_code, deep.headers["content-type"]) == (422, PROBLEM)
    assert (deep.json()["field"], deep.json()["rule"]) == (
        "body",
        "must not nest deeper than 32 levels",
    )
    # 32 levels are fine: the route answers in its own words
    nested = client.post(
        "/api/v1/customers", json={**customer_body("Deep"), "x": [[[[[[[[[[1]]]]]]]]]]}
    )
    assert nested.status_code == 422
    assert nested.json()["rule"] != "must not nest deeper than 32 levels"
    huge = client.post("/api/v1/customers", json=customer_body("x" * (1024 * 1024)))
    assert (huge.status_code, huge.headers["content-type"]) == (413, PROBLEM)
    assert huge.json()["rule"] == "must be at most 1 MiB"
    assert written(app) == before


def test_a_nul_in_a_web_form_or_query_is_a_422_page(database_url: str, clock: FixedClock) -> None:
    with console_world(database_url, clock) as (app, _ids):
        browser = Browser(app)
        browser.get("/console/login")
        before = written(app)
        form = browser.post("/console/login", {"username": "ali\x00ce", "password": "x"})
        assert form.status_code == 422
        assert "text/html" in form.headers["content-type"]
        assert f"username: {NUL}" in form.text
        # multipart (the upload form's encoding) is read by the web's own form reader
        fields = {"csrf_token": browser.csrf, "username": "ali\x00ce", "password": "x"}
        upload = browser.request(
            "POST",
            "/console/login",
            content="".join(
                f'--b0\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                for name, value in fields.items()
            ).encode()
            + b"--b0--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b0"},
        )
        assert upload.status_code == 422
        assert f"username: {NUL}" in upload.text
        query = browser.get("/portal/login?next=%00")
        assert (query.status_code, "text/html" in query.headers["content-type"]) == (422, True)
        assert written(app) == before
