"""CLI for the operator settings: show them with their meaning, change one (validated)."""

from __future__ import annotations

import typer

from ispbill.adapters.db import settings_store
from ispbill.entrypoints.cli.base import ACTOR, Cli, console, emit, unit_of_work

settings_app = Cli(help="Operator settings: billing policy, invoice numbering, seller details.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


@settings_app.command("show")
def settings_show(as_json: bool = JSON) -> None:
    """Every setting with its current value and what it means."""
    with unit_of_work() as (uow, _):
        current = settings_store.load(uow)
    values = current.model_dump(mode="json")
    rows = [
        {"key": key, "value": values[key], "description": info.description}
        for key, info in settings_store.OperatorSettings.model_fields.items()
    ]
    emit(rows, as_json=as_json, title="Operator settings")


@settings_app.command("set")
def settings_set(
    key: str = typer.Argument(..., help="The setting's name (see 'settings show')."),
    value: str = typer.Argument(..., help="The new value; '' or 'none' clears an optional one."),
) -> None:
    """Change one setting; a bad key or value is refused naming the key, nothing written."""
    with unit_of_work() as (uow, now):
        updated = settings_store.set_value(uow, key=key, raw=value, now=now, actor=ACTOR)
    stored = updated.model_dump(mode="json")[key]
    console.print(f"{key} = {stored!r}", markup=False)
