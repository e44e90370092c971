"""A plan's price from a day through the CLI and the API, on both databases (the engine's
side is tests/scenarios/test_plan_prices.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_support import PLAN, PROBLEM, Api, World, api_app, make_world
from sqlalchemy import func, select
from typer.testing import CliRunner

from ispbill.adapters.db.models import Event, PlanPrice
from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from ispbill.entrypoints.cli.main import app as cli

NOW = "2026-01-10T09:00:00Z"
runner = CliRunner()


def _prices(app: App) -> list[tuple[int, str, str | None]]:
    with app.uow() as uow:
        rows = uow.session.scalars(select(PlanPrice).order_by(PlanPrice.valid_from))
        return [
            (r.price_minor, r.valid_from.isoformat(), r.valid_to and r.valid_to.isoformat())
            for r in rows
        ]


def test_cli_prices_a_plan_from_a_day(app: App, database_url: str) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--database-url", database_url, "--now", NOW, *args])
        return result.exit_code, result.output

    code, out = run(
        "plans", "add", "Home 30", "--price", "30.00", "--currency", "USD",
        "--download", "50M", "--upload", "10M",
    )  # fmt: skip
    assert code == 0, out
    code, out = run("plans", "price", "Home 30", "--amount", "35.00", "--from", "2026-02-01")
    assert (code, out.strip()) == (0, "plan 'Home 30': 35.00 USD from 2026-02-01")
    code, out = run("plans", "prices", "Home 30", "--json")
    assert code == 0, out
    assert json.loads(out) == [
        {"price": "30.00 USD", "from": "2026-01-10", "until": "2026-02-01"},
        {"price": "35.00 USD", "from": "2026-02-01", "until": None},
    ]
    listed = json.loads(run("plans", "list", "--json")[1])
    assert [p["price"] for p in listed] == ["35.00 USD"]  # the list price is the latest

    before = _prices(app)
    code, out = run("plans", "price", "Home 30", "--amount", "36.00", "--from", "2026-01-20")
    assert code == 2
    assert "from: 2026-01-20 is not after 2026-02-01" in out
    code, out = run("plans", "price", "Home 30", "--amount", "36.00", "--from", "next week")
    assert code == 2
    assert "from: must be a date like 2026-12-01" in out
    assert _prices(app) == before


@pytest.fixture
def api(database_url: str, clock: FixedClock) -> Iterator[tuple[App, World]]:
    app = api_app(database_url, clock)
    try:
        yield app, make_world(app)
    finally:
        app.close()


def test_api_prices_a_plan_from_a_day(api: tuple[App, World]) -> None:
    app, world = api
    admin = Api(app, world.tokens["ops"])
    created = admin.post("/api/v1/plans", json=PLAN)
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    today = app.clock.now().date().isoformat()

    answer = admin.post(
        f"/api/v1/plans/{plan_id}/prices", json={"amount": "32.50", "valid_from": "2026-03-01"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {
        "price": {"amount": "32.50", "currency": "USD"},
        "valid_from": "2026-03-01",
        "valid_to": None,
    }
    history = Api(app, world.tokens["auditor"]).get(f"/api/v1/plans/{plan_id}/prices")
    assert history.status_code == 200
    assert [(h["price"]["amount"], h["valid_from"], h["valid_to"]) for h in history.json()] == [
        ("30.00", today, "2026-03-01"),
        ("32.50", "2026-03-01", None),
    ]
    assert admin.get(f"/api/v1/plans/{plan_id}").json()["price"]["amount"] == "32.50"
    with app.uow() as uow:
        event = uow.session.scalars(select(Event).where(Event.kind == "plan.price_changed")).one()
        assert event.actor.startswith("api:ops")

    refused = admin.post(
        f"/api/v1/plans/{plan_id}/prices", json={"amount": "33.00", "valid_from": "2026-02-01"}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["field"] == "from"
    readonly = Api(app, world.tokens["auditor"]).post(
        f"/api/v1/plans/{plan_id}/prices", json={"amount": "33.00", "valid_from": "2026-04-01"}
    )
    assert readonly.status_code == 403
    missing = admin.post(
        "/api/v1/plans/999/prices", json={"amount": "1", "valid_from": "2026-04-01"}
    )
    assert missing.status_code == 404
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count(PlanPrice.id))) == 2
