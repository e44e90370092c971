"""The network-enforcement CLI on both databases: NAS records, service credentials, the
FreeRADIUS configuration, FUP usage by hand and the outbox; refusals exit 2 naming the field
and write nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from radius_support import TOKEN, build_world
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from ispbill.adapters.db.models import Base, NasRow, NetworkIdentity
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog.name_lookups import plan_id_of
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.service_lifecycle import new_services as services

runner = CliRunner()
NOW = "2026-01-01T09:00:00Z"


def invoke(url: str, *args: str) -> Result:
    return runner.invoke(
        cli, ["--database-url", url, "--now", NOW, *args], env={"ISPBILL_RADIUS_TOKEN": TOKEN}
    )


def counts(app: App) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def test_nas_and_credentials(app: App, database_url: str, tmp_path: Path) -> None:
    world = build_world(app, app.clock.now())
    added = invoke(
        database_url,
        "nas",
        "add",
        "core-2",
        "--address",
        "10.0.0.2",
        "--secret",
        "another-secret",
        "--vendor",
        "generic",
        "--coa-port",
        "1700",
    )
    assert added.exit_code == 0, added.output
    listed = json.loads(invoke(database_url, "nas", "list", "--json").stdout)
    assert [(n["name"], n["coa_port"], n["vendor"]) for n in listed] == [
        ("edge-1", 3799, "mikrotik"),
        ("core-2", 1700, "generic"),
    ]
    assert "secret" not in listed[0]
    done = invoke(
        database_url,
        "services",
        "credentials",
        str(world.service),
        "--mac",
        "AA-BB-CC-00-11-22",
        "--static-ip",
        "100.64.0.9",
        "--nas",
        "core-2",
    )
    assert done.exit_code == 0, done.output
    shown = json.loads(
        invoke(database_url, "services", "identity", str(world.service), "--json").stdout
    )
    assert shown["mac_address"] == "aa:bb:cc:00:11:22"
    assert shown["static_ip"] == "100.64.0.9"
    config = invoke(database_url, "radius", "config", "--out", str(tmp_path / "raddb"))
    assert config.exit_code == 0, config.output
    clients = (tmp_path / "raddb" / "clients.conf").read_text()
    assert 'secret = "another-secret"' in clients
    assert "require_message_authenticator = yes" in clients
    rest = (tmp_path / "raddb" / "mods-enabled" / "rest").read_text()
    assert f'password = "{TOKEN}"' in rest
    assert "retry_delay = 1" in rest
    assert oct((tmp_path / "raddb" / "clients.conf").stat().st_mode & 0o777) == "0o600"


REFUSALS = [
    (["nas", "add", "x", "--address", "10.0.0.300", "--secret", "long-enough"], "address"),
    (["nas", "add", "x", "--address", "10.0.0.3", "--secret", "short"], "secret"),
    (["nas", "add", "x", "--address", "10.0.0.3", "--secret", 'has"quote1'], "secret"),
    (
        [
            "nas",
            "add",
            "x",
            "--address",
            "10.0.0.3",
            "--secret",
            "long-enough",
            "--vendor",
            "cisco",
        ],
        "vendor",
    ),
    (["nas", "add", "edge-1", "--address", "10.0.0.3", "--secret", "long-enough"], "name"),
    (["nas", "add", "y", "--address", "127.0.0.1", "--secret", "long-enough"], "address"),
    (["services", "credentials", "1", "--username", "bob"], "password"),
    (["services", "credentials", "1", "--mac", "aa:bb"], "mac_address"),
    (
        [
            "services",
            "credentials",
            "1",
            "--username",
            "alice",
            "--password",
            "x",
            "--static-ip",
            "nope",
        ],
        "static_ip",
    ),
    (["services", "credentials", "99", "--username", "zed", "--password", "x"], "service"),
    (
        [
            "services",
            "credentials",
            "1",
            "--username",
            "z",
            "--password",
            "x",
            "--nas",
            "ghost",
        ],
        "nas",
    ),
    (["usage", "add", "1", "lots"], "bytes"),
    (["usage", "add", "x1", "5GB"], "service"),
]


def test_refusals_name_the_field_and_write_nothing(app: App, database_url: str) -> None:
    build_world(app, app.clock.now())
    before = counts(app)
    for args, field in REFUSALS:
        result = invoke(database_url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(f"error: {field}:"), (args, result.stderr)
        assert counts(app) == before, args


def test_a_username_taken_by_another_service_is_refused(app: App, database_url: str) -> None:
    world = build_world(app, app.clock.now())
    other = invoke(
        database_url, "services", "add", "--customer", str(world.customer), "--plan", "Home 50"
    )
    assert other.exit_code == 0, other.output
    refused = invoke(
        database_url, "services", "credentials", "2", "--username", "alice", "--password", "pw"
    )
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: username:")


def test_usage_by_hand_fires_the_fup_tiers_and_the_outbox_shows_it(
    app: App, database_url: str
) -> None:
    world = build_world(app, app.clock.now())
    throttled = invoke(database_url, "usage", "add", str(world.service), "1.5GB")
    assert throttled.exit_code == 0, throttled.output
    assert "FUP tier 1: throttle" in throttled.stdout
    shown = json.loads(invoke(database_url, "usage", "show", str(world.service), "--json").stdout)
    assert shown[0]["bytes"] == 1_500_000_000
    assert shown[0]["throttle"] == "5000k/1000k"
    invoke(database_url, "usage", "add", str(world.service), "600000000")
    outbox = json.loads(invoke(database_url, "outbox", "list", "--json").stdout)
    assert [c["event"] for c in outbox][:2] == ["service.suspended", "service.fup_throttled"]
    assert all(c["status"] == "pending" for c in outbox)
    # with no session open, the worker settles every command without sending anything
    ran = invoke(database_url, "outbox", "run", "--once")
    assert ran.exit_code == 0, ran.output
    settled = json.loads(invoke(database_url, "outbox", "list", "--json").stdout)
    assert {c["status"] for c in settled} == {"done"}
    assert settled[0]["results"] == {"-": {"final": True, "answer": "no open session"}}
    with app.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(NasRow)) == 1


def test_a_username_claimed_concurrently_is_refused_naming_the_field(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers both find the username free; the second one's insert meets the unique
    index, and the refusal names ``username`` instead of failing with a database error."""
    world = build_world(app, app.clock.now())
    with app.uow() as uow:
        other = services.add_service(
            uow,
            spec=services.NewService(
                customer_id=world.customer, plan_id=plan_id_of(uow, "Home 50")
            ),
            now=app.clock.now(),
            actor="test",
        ).id
    real_check = network._require_all_free
    checks: list[int] = []

    def check_misses_the_first_time(*args: Any) -> None:
        checks.append(1)
        if len(checks) > 1:  # the check after the failed insert sees the committed claim
            real_check(*args)

    monkeypatch.setattr(network, "_require_all_free", check_misses_the_first_time)
    spec = network.NewIdentity(service_id=other, username="alice", password="another")
    with app.uow() as uow, pytest.raises(Conflict, match="username: 'alice' is already used"):
        network.set_identity(uow, spec=spec, now=app.clock.now(), actor="test")
    assert len(checks) == 2
    with app.uow() as uow:
        assert uow.session.get(NetworkIdentity, other) is None
