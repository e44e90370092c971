"""Defects found on main by issue 17, each pinned by a test that failed before its fix, on both
databases: ``customers add --cycle every_n_days`` billed daily whatever N was; the API had no
Charge & Invoice route and no checkout route although the CLI had both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from api_support import PROBLEM, Api, World, customer_body, make_world
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from ispbill.adapters.db.models import CheckoutRow, Customer, Invoice
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.entrypoints.cli.main import app as cli
from ispbill.settings import Settings
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service
from scenarios.helpers import check_books

NOW = "2026-01-01T09:00:00Z"
runner = CliRunner()


def cli_ok(url: str, *args: str) -> str:
    result = runner.invoke(cli, ["--database-url", url, "--now", NOW, *args])
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def cli_refused(url: str, *args: str) -> str:
    result = runner.invoke(cli, ["--database-url", url, "--now", NOW, *args])
    assert result.exit_code == 2, (args, result.output)
    return result.stderr


@pytest.mark.parametrize(
    ("args", "kind", "n"),
    [
        (["--cycle", "every_n_days", "--cycle-n", "7"], "every_n_days", 7),
        (["--cycle", "every_10_days"], "every_n_days", 10),
        (["--cycle", "every_n_months", "--cycle-n", "3"], "every_n_months", 3),
    ],
)
def test_an_every_n_cycle_keeps_its_n(
    app: App, database_url: str, args: list[str], kind: str, n: int
) -> None:
    """``--cycle every_n_days`` stored N=1, so the customer was billed daily: the first charge
    now covers N days."""
    cli_ok(database_url, "classes", "add", "Home")
    cli_ok(
        database_url,
        *("plans", "add", "Basic", "--price", "7.00", "--currency", "USD"),
        *("--download", "10M", "--upload", "2M"),
    )
    cli_ok(
        database_url,
        *("customers", "add", "Nina", "--class", "Home", "--currency", "USD"),
        *("--available-funds", "100", *args),
    )
    with app.uow() as uow:
        stored = uow.session.scalars(select(Customer).where(Customer.name == "Nina")).one()
        assert (stored.cycle_kind, stored.cycle_n) == (kind, n)
    cli_ok(database_url, "services", "add", "--customer", "Nina", "--plan", "Basic")
    charged = json.loads(cli_ok(database_url, "charge", "Nina", "--json"))
    [first] = charged["charges"]
    start, _, last = first["period"].partition("..")
    length = (date.fromisoformat(last) - date.fromisoformat(start)).days + 1
    if kind == "every_n_days":
        assert length == n
    else:
        assert 28 * n <= length <= 31 * n


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--cycle", "every_n_days"], "cycle_n"),  # N is required, never silently 1
        (["--cycle", "monthly", "--cycle-n", "2"], "cycle_n"),
        (["--cycle", "every_5_days", "--cycle-n", "6"], "cycle_n"),
        (["--cycle", "every_n_days", "--cycle-n", "0"], "cycle_n"),
        (["--cycle", "fortnightly"], "billing_cycle"),
    ],
)
def test_a_wrong_cycle_count_is_refused_naming_it(
    app: App, database_url: str, args: list[str], field: str
) -> None:
    cli_ok(database_url, "classes", "add", "Home")
    error = cli_refused(
        database_url, "customers", "add", "Nina", "--class", "Home", "--currency", "USD", *args
    )
    assert error.startswith(f"error: {field}: "), error
    with app.uow() as uow:
        assert uow.session.scalars(select(Customer)).first() is None


# -- the API's Charge & Invoice and checkout ---------------------------------------------------


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    settings = Settings(
        database_url=database_url,
        sandbox_secret=SecretStr("sandbox-secret-0123456789abcdef"),
        public_base_url="https://billing.example.net",
    )
    app = bootstrap(settings=settings, clock=clock)
    try:
        yield app, make_world(app)
        check_books(app)
    finally:
        app.close()


def customer_with_service(app: App, client: Api, **extra: str) -> int:
    created = client.post("/api/v1/customers", json=customer_body("Ada", **extra))
    assert created.status_code == 201, created.text
    customer_id = int(created.json()["id"])
    now = app.clock.now()
    with app.uow() as uow:
        plan = add_plan(
            uow,
            spec=NewPlan(name="Fiber", price="30.00", currency="USD", download="50M", upload="10M"),
            now=now,
            actor="t",
        )
    with app.uow() as uow:
        add_service(
            uow, spec=NewService(customer_id=customer_id, plan_id=plan.id), now=now, actor="t"
        )
    return customer_id


def test_charge_and_invoice_over_the_api(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    customer_id = customer_with_service(app, admin, available_funds="100.00")
    answer = admin.post(f"/api/v1/customers/{customer_id}/charge")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [c["kind"] for c in body["charges"]] == ["period"]
    assert body["invoice_number"]
    with app.uow() as uow:
        invoice = uow.session.scalars(
            select(Invoice).where(Invoice.number == body["invoice_number"])
        ).one()
        assert invoice.customer_id == customer_id
    charged = Decimal(body["charges"][0]["amount"]["amount"])
    assert charged > 0
    assert Decimal(body["balance"]["amount"]) == Decimal("100.00") - charged
    again = admin.post(f"/api/v1/customers/{customer_id}/charge").json()
    assert again["charges"] == []  # nothing is due twice
    assert again["invoice_number"] in (None, body["invoice_number"])
    with app.uow() as uow:
        assert len(uow.session.scalars(select(Invoice)).all()) == 1
    assert again["balance"] == body["balance"]


def test_charge_and_checkout_respect_the_callers_scope(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    customer_id = customer_with_service(app, admin, reseller="North")
    south, auditor = Api(app, world.tokens["south"]), Api(app, world.tokens["auditor"])
    for url, body in (
        (f"/api/v1/customers/{customer_id}/charge", None),
        (f"/api/v1/customers/{customer_id}/checkout", {"months": 1}),
    ):
        hidden = south.post(url, json=body)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == PROBLEM
        assert auditor.post(url, json=body).status_code == 403
    north = Api(app, world.tokens["north"])
    assert north.post(f"/api/v1/customers/{customer_id}/charge").status_code == 200


def test_checkout_over_the_api(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    customer_id = customer_with_service(app, admin)
    answer = admin.post(f"/api/v1/customers/{customer_id}/checkout", json={"months": 2})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["total"] == {"amount": "60.00", "currency": "USD"}
    assert body["url"].startswith("https://billing.example.net/")
    assert body["quote"]
    with app.uow() as uow:
        row = uow.session.scalars(select(CheckoutRow)).one()
        assert (row.reference, row.customer_id) == (body["checkout"], customer_id)
    refused = admin.post(f"/api/v1/customers/{customer_id}/checkout", json={"months": 0})
    assert refused.status_code == 422
    unknown = admin.post(
        f"/api/v1/customers/{customer_id}/checkout", json={"months": 1, "gateway": "paypal"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["field"] == "gateway"


def test_the_openapi_document_lists_both_routes(api: tuple[App, World]) -> None:
    app, world = api
    paths = Api(app, world.tokens["ops"]).get("/api/v1/openapi.json").json()["paths"]
    assert "post" in paths["/api/v1/customers/{customer_id}/charge"]
    assert "post" in paths["/api/v1/customers/{customer_id}/checkout"]


def test_the_api_keeps_the_n_of_an_every_n_cycle(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    created = admin.post(
        "/api/v1/customers",
        json=customer_body("Nina", billing_cycle="every_n_days", cycle_n=14),
    )
    assert created.status_code == 201, created.text
    assert (created.json()["billing_cycle"], created.json()["cycle_n"]) == ("every_n_days", 14)
    missing = admin.post(
        "/api/v1/customers", json=customer_body("Nora", billing_cycle="every_n_days")
    )
    assert missing.status_code == 422
    assert missing.json()["field"] == "cycle_n"
