"""The domain is pure: no database, web, CLI or outer-layer imports, and no reading of the clock.

Every module under ``src/ispbill/domain`` is parsed (not imported) with ``ast``; the checker is
itself tested on small snippets so a blind spot shows up as a failure here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "ispbill" / "domain"

FORBIDDEN_MODULES = (
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "httpx",
    "requests",
    "typer",
    "click",
    "rich",
    "ispbill.adapters",
    "ispbill.use_cases",
    "ispbill.entrypoints",
    "ispbill.bootstrap",
    "ispbill.clock",
)
FORBIDDEN_NAMES = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.localtime",
        "time.gmtime",
    }
)


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES)


def violations(source: str, package: str = "ispbill.domain") -> list[str]:
    """What in ``source`` breaks the layering rules, as ``line: what`` strings."""
    tree = ast.parse(source)
    found: list[str] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden_module(alias.name):
                    found.append(f"{node.lineno}: imports {alias.name}")
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, package)
            for alias in node.names:
                qualified = f"{module}.{alias.name}" if module else alias.name
                if _forbidden_module(module) or _forbidden_module(qualified):
                    found.append(f"{node.lineno}: imports {qualified}")
                aliases[alias.asname or alias.name] = qualified

    def qualify(expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Name):  # only imported names: a local `time` is not the module
            return aliases.get(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = qualify(expr.value)
            return None if owner is None else f"{owner}.{expr.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            name = qualify(node)
            if name in FORBIDDEN_NAMES:
                found.append(f"{node.lineno}: reads the clock via {name}")
    return sorted(set(found))


def domain_modules() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


def test_the_domain_package_is_found() -> None:
    names = {p.name for p in domain_modules()}
    assert {"money.py", "calendar.py", "ledger.py", "customers.py", "plans.py"} <= names


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import sqlalchemy", "imports sqlalchemy"),
        ("import sqlalchemy.orm as orm", "imports sqlalchemy.orm"),
        ("from sqlalchemy import select", "imports sqlalchemy.select"),
        ("from fastapi import FastAPI", "imports fastapi.FastAPI"),
        ("import httpx", "imports httpx"),
        ("import typer", "imports typer"),
        ("from rich.console import Console", "imports rich.console.Console"),
        ("from ispbill.adapters.db.models import Plan", "imports ispbill.adapters.db.models.Plan"),
        ("from ispbill import use_cases", "imports ispbill.use_cases"),
        ("from ..entrypoints.cli import main", "imports ispbill.entrypoints.cli.main"),
        (
            "from ispbill.adapters.db.ledger_store import post",
            "imports ispbill.adapters.db.ledger_store.post",
        ),
        ("import datetime\nx = datetime.datetime.now()", "datetime.datetime.now"),
        ("from datetime import datetime\nx = datetime.now(UTC)", "datetime.datetime.now"),
        ("from datetime import datetime as dt\nx = dt.utcnow()", "datetime.datetime.utcnow"),
        ("from datetime import date\nx = date.today()", "datetime.date.today"),
        ("import time\nx = time.time()", "time.time"),
        ("from time import time\nx = time()", "time.time"),
        ("from time import time as clock\nstamp = clock", "time.time"),
    ],
)
def test_the_checker_sees_violations(source: str, expected: str) -> None:
    assert any(expected in v for v in violations(source)), violations(source)


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, date, datetime, timedelta\nx = datetime(2026, 1, 1, tzinfo=UTC)",
        "from ispbill.domain.money import Money",
        "from .errors import ValidationError",
        "import re\nfrom zoneinfo import ZoneInfo",
        "def f(now):\n    return now.date()",
        "from datetime import date\nd = date.fromisoformat('2026-01-01')",
        "def f(time):\n    return time.time()",
    ],
)
def test_the_checker_allows_pure_code(source: str) -> None:
    assert violations(source) == []
