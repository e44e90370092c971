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
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from typer.core import TyperCommand

from ispbill.adapters.db.engine import normalize_url
from ispbill.adapters.db.migrate import is_up_to_date
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import Clock, FixedClock, SystemClock
from ispbill.domain.dates import check_date
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.settings import Settings

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
                    return fn(*a, **kw)
                except IspbillError as exc:
                    fail(str(exc))
                except OperationalError as exc:
                    fail(database_problem(exc))
                except DBAPIError as exc:  # one unit of work: rolled back whole
                    fail(f"{database_problem(exc)}; nothing was written")

            register(guarded)
            return fn

        return decorator


def database_problem(exc: DBAPIError) -> str:
    """What the database said, on one line, without claiming what was (not) written: a
    command that commits in several transactions says that itself."""
    if isinstance(exc, IntegrityError):
        return f"database: refused by a constraint ({_first_line(exc.orig)})"
    if isinstance(exc, OperationalError):
        return f"database: cannot be used ({_first_line(exc.orig)})"
    return f"database: refused a value ({_first_line(exc.orig)})"


def _first_line(error: BaseException | None) -> str:
    """Drivers add DETAIL/HINT lines; a refusal stays on one line."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def fail(message: str) -> None:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@dataclass
class CliState:
    database_url: str | None = None
    now: datetime | None = None


state = CliState()


def settings() -> Settings:
    current = Settings()
    if state.database_url:
        current = current.model_copy(update={"database_url": state.database_url})
    return current


def clock() -> Clock:
    return FixedClock(state.now) if state.now else SystemClock()


@contextmanager
def app_for_command(*, require_schema: bool = True) -> Iterator[App]:
    current = settings()
    if require_schema and _missing_sqlite_file(current.database_url):
        raise ValidationError(
            "database", f"{current.database_url} does not exist; run 'ispbill init' to create it"
        )
    if require_schema and not is_up_to_date(current.database_url):
        raise ValidationError(
            "database",
            f"{current.database_url} is not initialised or not migrated; run 'ispbill init'",
        )
    app = bootstrap(settings=current, clock=clock())
    try:
        yield app
    finally:
        app.close()


def _missing_sqlite_file(url: str) -> bool:
    """Checking the schema of a missing SQLite file would create it: refuse before that."""
    parsed = make_url(normalize_url(url))
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return False
    return not path.startswith("file:") and not Path(path).exists()


@contextmanager
def unit_of_work() -> Iterator[tuple[UnitOfWork, datetime]]:
    """A unit of work and the instant the command acts at."""
    with app_for_command() as app, app.uow() as uow:
        yield uow, app.clock.now()


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
