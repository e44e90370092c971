"""Shared CLI plumbing: the Typer subclass that turns domain errors into exit status 2,
the per-invocation app (database, clock), and table/JSON output."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from ispbill.adapters.db.database_problems import DatabaseProblem, reported
from ispbill.adapters.db.engine import missing_sqlite_file
from ispbill.adapters.db.migrate import is_up_to_date
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import Clock, FixedClock
from ispbill.domain.dates import check_date
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.settings import Settings
from ispbill.use_cases.queries.cli_listings import Page, rows_page

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
ACTOR = "admin:cli"


NEGATIVE_NUMBER = re.compile(r"^-[0-9]+([.,][0-9]*)?$")


class Command(TyperCommand):
    """A command that reads ``-1`` as a value, not as an unknown option.

    Click takes every word starting with ``-`` for an option, so ``payments add C -1`` was
    refused with a usage box about an option ``-1``. When the only trouble is such a negative
    number, the words are parsed again with it as an argument, and the command refuses the
    value by its own rule (``error: amount: must be greater than zero``), on one line.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, list(args))
        except Exception as exc:  # Click's NoSuchOption (Typer vendors Click under a private name)
            unknown = getattr(exc, "option_name", None)
            if not isinstance(unknown, str) or not NEGATIVE_NUMBER.match(unknown):
                raise
        ctx.ignore_unknown_options = True
        try:
            return super().parse_args(ctx, list(args))
        finally:
            ctx.ignore_unknown_options = False


class Cli(typer.Typer):
    """Every command refuses bad input with one line naming the field and rule, exit 2."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("cls", Command)
        register = super().command(*args, **kwargs)

        def decorator(fn: F) -> F:
            @functools.wraps(fn)
            def guarded(*a: Any, **kw: Any) -> Any:
                try:
                    with reported():
                        return fn(*a, **kw)
                except DatabaseProblem as exc:  # one unit of work: rolled back whole
                    fail(str(exc) if exc.unusable else f"{exc}; nothing was written")
                except IspbillError as exc:
                    fail(str(exc))

            register(guarded)
            return fn

        return decorator


def fail(message: str) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@dataclass
class CliState:
    database_url: str | None = None
    now: datetime | None = None
    app: App | None = None  # the running command's, while it runs


state = CliState()


def settings() -> Settings:
    current = Settings()
    if state.database_url:
        current = current.model_copy(update={"database_url": state.database_url})
    return current


def clock() -> Clock | None:
    """``--now``'s fixed clock, else None: the bootstrap's default (the system clock)."""
    return FixedClock(state.now) if state.now else None


@contextmanager
def app_for_command(*, require_schema: bool = True) -> Iterator[App]:
    current = settings()
    if require_schema and missing_sqlite_file(current.database_url):
        raise ValidationError(
            "database", f"{current.database_url} does not exist; run 'ispbill init' to create it"
        )
    if require_schema and not is_up_to_date(current.database_url):
        raise ValidationError(
            "database",
            f"{current.database_url} is not initialised or not migrated; run 'ispbill init'",
        )
    app = bootstrap(settings=current, clock=clock())
    outer, state.app = state.app, app
    try:
        yield app
    finally:
        state.app = outer
        app.close()


@contextmanager
def unit_of_work() -> Iterator[tuple[UnitOfWork, datetime]]:
    """A unit of work and the instant the command acts at."""
    with app_for_command() as app, app.uow() as uow:
        yield uow, app.clock.now()


def find(lookup: Callable[..., int], text: str, **options: Any) -> int:
    """What the operator typed (a name, an id, a reference) as the id a use case takes, read by
    ``lookup`` (``use_cases/catalog/name_lookups``) in a unit of work of its own: it ends
    before the command's own begins, so a use case that writes still opens its transaction
    first (on SQLite, BEGIN IMMEDIATE)."""
    if state.app is None:
        raise RuntimeError("find() runs inside a command (app_for_command or unit_of_work)")
    with state.app.uow() as uow:
        return lookup(uow, text, **options)


def find_optional(lookup: Callable[..., int], text: str | None, **options: Any) -> int | None:
    """``find`` for an optional argument: None stays None."""
    return None if text is None else find(lookup, text, **options)


def parse_instant(text: str, field: str = "at") -> datetime:
    """ISO 8601 instant; a date means its UTC midnight; a naive time is taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            field, "must be an ISO 8601 date or instant, e.g. 2026-12-01T00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return check_date(field, value).astimezone(UTC)


def parse_day(text: str | None, field: str) -> date | None:
    """An ISO date within the range ispbill accepts (``domain/dates``), or None."""
    if text is None:
        return None
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a date like 2026-12-01") from None
    return check_date(field, value)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def emit(
    rows: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    title: str,
    columns: Sequence[str] | None = None,
) -> None:
    """A listing as a Rich table, or as JSON (one array of objects) for scripts."""
    if as_json:
        typer.echo(json.dumps(to_jsonable(list(rows)), indent=2, ensure_ascii=False))
        return
    columns = list(columns or (rows[0].keys() if rows else []))
    table = Table(title=Text(title))
    for column in columns:
        table.add_column(column)
    for row in rows:  # Text: names like "Acme [/]" are data, never Rich markup
        table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
    console.print(table)


# Every listing pages (issue 17): --limit rows at a time, --cursor to go on, --all for every
# row; when more rows exist than were printed, a line on stderr says how to get them (stdout
# stays a table, or a JSON array, either way).
LIMIT = typer.Option(200, "--limit", min=1, max=10_000, help="At most this many rows.")
CURSOR = typer.Option(
    None, "--cursor", min=1, help="Go on after this cursor (printed when more rows exist)."
)
ALL = typer.Option(False, "--all", help="Every row, page after page.")


def listing(
    fetch: Callable[[UnitOfWork, int | None, int], Page],
    *,
    limit: int,
    cursor: int | None,
    every: bool,
) -> tuple[list[dict[str, Any]], int | None]:
    """The rows of one page (``limit`` after ``cursor``), or of every page with ``every``;
    and the next page's cursor when more rows follow."""
    rows: list[dict[str, Any]] = []
    after = cursor
    with unit_of_work() as (uow, _):
        while True:
            page = fetch(uow, after, limit)
            rows.extend(page.rows)
            if not every or page.last_id is None:
                return rows, page.last_id
            after = page.last_id


def page_rows(
    rows: list[dict[str, Any]],
    *,
    limit: int,
    cursor: int | None,
    every: bool,
    key: str = "id",
) -> tuple[list[dict[str, Any]], int | None]:
    """``listing`` for a short list read whole (staff, tokens, NAS, top-up rules): the same
    options and the same note when more rows exist."""
    page = rows_page(rows, after=cursor, limit=max(len(rows), 1) if every else limit, key=key)
    return page.rows, page.last_id


def emit_listing(
    found: tuple[list[dict[str, Any]], int | None],
    *,
    as_json: bool,
    title: str,
    columns: Sequence[str] | None = None,
) -> None:
    """A page of a listing (``emit``), then, when more rows exist, one line on stderr with
    the cursor of the next page."""
    rows, next_cursor = found
    emit(rows, as_json=as_json, title=title, columns=columns)
    if next_cursor is not None:
        err_console.print(
            f"more rows follow: --cursor {next_cursor} for the next page, or --all",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def emit_object(obj: dict[str, Any], *, as_json: bool, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False))
        return
    table = Table(title=Text(title), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in obj.items():
        if isinstance(value, list | dict):
            value = json.dumps(to_jsonable(value), ensure_ascii=False)
        table.add_row(key, Text("" if value is None else str(value)))
    console.print(table)
