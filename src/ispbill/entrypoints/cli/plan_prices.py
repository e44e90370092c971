"""CLI for a plan's price from a day (issue 17): ``plans price`` and ``plans prices``,
registered on ``plans`` by ``main.py``.

Kept apart from ``catalog.py`` (the plan's own fields) because a price is not an edit: it is a
new row of the plan's price history, which the engine reads per billing period.
"""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import ACTOR, console, emit, find, parse_day, unit_of_work
from ispbill.use_cases.catalog import plan_prices
from ispbill.use_cases.catalog.name_lookups import plan_id_of


def plans_price(
    plan: str = typer.Argument(..., help="Plan id or name."),
    amount: str = typer.Option(..., help="Price per period in major units, e.g. 35.00"),
    effective: str = typer.Option(
        ...,
        "--from",
        help="First day of the price: each service pays it from its first billing period "
        "starting on or after this day; charged periods never change.",
    ),
) -> None:
    day = parse_day(effective, "from")
    assert day is not None
    with unit_of_work() as (uow, now):
        row = plan_prices.change_plan_price(
            uow,
            plan_id=find(plan_id_of, plan),
            amount=amount,
            effective=day,
            now=now,
            actor=ACTOR,
        )
    console.print(f"plan {plan!r}: {row.amount} from {row.valid_from.isoformat()}", markup=False)


def plans_prices(
    plan: str = typer.Argument(..., help="Plan id or name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    with unit_of_work() as (uow, _):
        rows = plan_prices.price_history(uow, plan_id=find(plan_id_of, plan))
    emit(
        [{"price": str(r.amount), "from": r.valid_from, "until": r.valid_to} for r in rows],
        as_json=as_json,
        title="Prices",
    )
