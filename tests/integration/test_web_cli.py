"""``ispbill staff`` and ``ispbill portal`` through Typer's test runner, on both databases:
users are created with hashed passwords, refusals exit 2 naming the field and write nothing."""

from __future__ import annotations

import json

import pyotp
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from ispbill.adapters.db.models import PortalAccount, StaffUser
from ispbill.bootstrap import App
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of
from ispbill.use_cases.catalog.offerings import NewClass, add_class, add_reseller

runner = CliRunner()


def invoke(url: str, *args: str) -> Result:
    return runner.invoke(cli, ["--database-url", url, "--now", "2026-01-01T09:00:00Z", *args])


def staff_count(app: App) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(StaffUser)) or 0)


def test_staff_commands(app: App, database_url: str) -> None:
    now = app.clock.now()
    with app.uow() as uow:
        add_reseller(uow, name="North", now=now, actor="test")
    added = invoke(database_url, "staff", "add", "Alice", "--role", "admin", "--password", "x" * 12)
    assert added.exit_code == 0, added.output
    with app.uow() as uow:
        row = uow.session.scalars(select(StaffUser)).one()
        assert row.username == "alice"
        assert row.password_hash.startswith("$argon2id$")
    for args, field in [
        (["staff", "add", "bob", "--role", "admin", "--password", "short"], "password"),
        (["staff", "add", "bob", "--role", "boss", "--password", "x" * 12], "role"),
        (["staff", "add", "bob", "--role", "reseller", "--password", "x" * 12], "reseller"),
        (["staff", "add", "alice", "--role", "admin", "--password", "x" * 12], "username"),
    ]:
        refused = invoke(database_url, *args)
        assert refused.exit_code == 2, refused.output
        assert f"error: {field}:" in refused.output
    assert staff_count(app) == 1
    nora = invoke(
        database_url, "staff", "add", "nora", "--role", "reseller", "--reseller", "North",
        "--password", "y" * 12,
    )  # fmt: skip
    assert nora.exit_code == 0, nora.output
    listed = json.loads(invoke(database_url, "staff", "list", "--json").stdout)
    assert [(r["username"], r["role"], r["totp"]) for r in listed] == [
        ("alice", "admin", False),
        ("nora", "reseller", False),
    ]
    totp = invoke(database_url, "staff", "totp", "alice")
    assert totp.exit_code == 0
    uri = next(line for line in totp.stdout.splitlines() if line.startswith("otpauth://"))
    assert pyotp.parse_uri(uri).secret
    assert invoke(database_url, "staff", "disable", "nora").exit_code == 0
    assert invoke(database_url, "staff", "disable", "nobody").exit_code == 2


def test_portal_login_command(app: App, database_url: str) -> None:
    now = app.clock.now()
    with app.uow() as uow:
        add_class(uow, spec=NewClass(name="Home"), now=now, actor="test")
    with app.uow() as uow:
        spec = NewCustomer(
            name="Jana", customer_class_id=customer_class_id_of(uow, "Home"), currency="EUR"
        )
        add_customer(uow, spec=spec, now=now, actor="test")
    done = invoke(database_url, "portal", "login", "Jana", "--email", "Jana@Example.net")
    assert done.exit_code == 0, done.output
    refused = invoke(database_url, "portal", "login", "Jana", "--email", "not-an-address")
    assert refused.exit_code == 2
    assert "error: email:" in refused.output
    with app.uow() as uow:
        account = uow.session.scalars(select(PortalAccount)).one()
        assert account.email == "jana@example.net"
        assert account.password_hash is None  # signs in through e-mailed links
