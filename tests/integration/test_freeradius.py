"""Against the real thing: Debian's FreeRADIUS 3.2 with the configuration `ispbill radius
config` writes, asking ispbill (uvicorn on loopback) through rlm_rest, driven by radclient.

FreeRADIUS and ispbill start once per module and database (free local ports); each test puts
the service in the state it needs. Skipped with a reason where FreeRADIUS is not installed
(scripts/system-deps.sh --test installs it; under CI a missing FreeRADIUS is a failure).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from radius_support import NAS_SECRET, TOKEN, World, build_world, force_state, set_setting
from sqlalchemy import create_engine, delete, select, text
from typer.testing import CliRunner

from ispbill.adapters.db.models import Base, RadiusSession, UsageRecord
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.entrypoints.asgi_app import create_app
from ispbill.entrypoints.cli.main import app as cli
from ispbill.settings import Settings
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog.name_lookups import plan_id_of
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.service_lifecycle import new_services as services

FREERADIUS = shutil.which("freeradius")
RADCLIENT = shutil.which("radclient")
pytestmark = pytest.mark.skipif(
    not (FREERADIUS and RADCLIENT) and not os.environ.get("CI"),
    reason="FreeRADIUS not installed (bash scripts/system-deps.sh --test)",
)
PASSWORD = "s3cret%{x}"


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    app: App
    world: World
    auth_port: int
    acct_port: int
    bob: int


@pytest.fixture(
    scope="module",
    params=[("sqlite", "rest"), ("postgresql", "rest"), ("sqlite", "sql"), ("postgresql", "sql")],
    ids=lambda p: "-".join(p),
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """ispbill and FreeRADIUS for one database, authorizing through rlm_rest, or through
    rlm_sql reading the precomputed answers (rlm_rest still takes accounting)."""
    kind, authorize = request.param
    base = tmp_path_factory.mktemp(f"radius-{kind}-{authorize}")
    if kind == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), base / "ispbill.db")
        url = f"sqlite:///{base / 'ispbill.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_all(url)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))  # noqa: TID251 - a real FreeRADIUS stamps sessions with the wall clock
    settings = Settings(database_url=url, radius_token=TOKEN, radius_policy_ttl_seconds=0)
    app = bootstrap(settings=settings, clock=clock)
    world = build_world(app, clock.now(), password=PASSWORD)
    with app.uow() as uow:
        bob = services.add_service(
            uow,
            spec=services.NewService(
                customer_id=world.customer, plan_id=plan_id_of(uow, "Home 50")
            ),
            now=clock.now(),
            actor="test",
        ).id
    tick(app.uow, now=clock.now())
    with app.uow() as uow:
        network.set_identity(
            uow,
            spec=network.NewIdentity(service_id=bob, username="bob", password="bobpass1"),
            now=clock.now(),
            actor="test",
        )
    api_port = free_port(socket.SOCK_STREAM)
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=api_port, log_level="warning")
    )
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    auth_port, acct_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    config_dir = base / "raddb"
    written = CliRunner().invoke(
        cli,
        [
            "--database-url",
            url,
            "radius",
            "config",
            "--out",
            str(config_dir),
            "--api-url",
            f"http://127.0.0.1:{api_port}",
            "--listen",
            "127.0.0.1",
            "--auth-port",
            str(auth_port),
            "--acct-port",
            str(acct_port),
            "--reject-delay",
            "0",
            "--authorize",
            authorize,
        ],
        env={"ISPBILL_RADIUS_TOKEN": TOKEN},
    )
    assert written.exit_code == 0, written.output
    log = (base / "freeradius.out").open("w")
    daemon = subprocess.Popen(
        [str(FREERADIUS), "-f", "-d", str(config_dir), "-l", "stdout"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(base / "freeradius.out", daemon)
        while not server.started:
            time.sleep(0.05)
        yield Stack(app, world, auth_port, acct_port, bob)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        log.close()
        server.should_exit = True
        serving.join(timeout=10)
        app.close()


def _wait_ready(output: Path, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = output.read_text()
        if "Ready to process requests" in text:
            return
        if daemon.poll() is not None:
            pytest.fail(f"freeradius exited:\n{text}")
        time.sleep(0.1)
    pytest.fail(f"freeradius not ready:\n{output.read_text()}")


@dataclass
class Answer:
    code: str
    attributes: dict[str, str]


def radclient(port: int, kind: str, lines: list[str]) -> Answer:
    """One request through radclient; the answer's code and attributes."""
    if kind == "auth":
        lines = [*lines, "Message-Authenticator = 0x00"]  # required by the generated clients.conf
    done = subprocess.run(
        [str(RADCLIENT), "-x", "-r", "1", "-t", "3", f"127.0.0.1:{port}", kind, NAS_SECRET],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    output = done.stdout
    match = re.search(r"Received (\S+) Id", output)
    if match is None:
        return Answer("no reply", {})
    received = output[match.start() :]
    attributes = dict(re.findall(r"^\t(\S+) = \"?(.*?)\"?$", received, flags=re.M))
    return Answer(match.group(1), attributes)


def login(stack: Stack, username: str = "alice", password: str = PASSWORD) -> Answer:
    return radclient(
        stack.auth_port, "auth", [f'User-Name = "{username}"', f'User-Password = "{password}"']
    )


def accounting(stack: Stack, status: str, session: str, *extra: str) -> Answer:
    return radclient(
        stack.acct_port,
        "acct",
        [
            f"Acct-Status-Type = {status}",
            'User-Name = "bob"',
            f'Acct-Session-Id = "{session}"',
            "Framed-IP-Address = 10.30.0.9",
            *extra,
        ],
    )


def test_active_is_accepted_with_the_rate_attribute(stack: Stack) -> None:
    force_state(stack.app, stack.world.service, "active")
    answer = login(stack)
    assert answer.code == "Access-Accept"
    assert answer.attributes["Mikrotik-Rate-Limit"] == "10M/50M"
    chap = radclient(
        stack.auth_port, "auth", ['User-Name = "alice"', f'CHAP-Password = "{PASSWORD}"']
    )
    assert chap.code == "Access-Accept"


def test_a_wrong_password_is_rejected_without_the_plan(stack: Stack) -> None:
    force_state(stack.app, stack.world.service, "active")
    answer = login(stack, password="guess")
    assert answer.code == "Access-Reject"
    assert "Mikrotik-Rate-Limit" not in answer.attributes


def test_each_suspension_reason_gets_its_walled_garden(stack: Stack) -> None:
    now = stack.app.clock.now()
    set_setting(
        stack.app, now, "radius_walled_garden", "non_payer=address_list:unpaid, fup=pool:fup-pool"
    )
    set_setting(stack.app, now, "radius_walled_garden_rate", "1M/512k")
    for reason in SuspensionReason:
        force_state(stack.app, stack.world.service, "suspended", reason.value)
        answer = login(stack)
        assert answer.code == "Access-Accept", reason
        assert answer.attributes["Reply-Message"] == f"suspended: {reason.value}"
        assert answer.attributes["Mikrotik-Rate-Limit"] == "512k/1M"
        if reason is SuspensionReason.FUP:
            assert answer.attributes["Framed-Pool"] == "fup-pool"
        else:
            expected = "unpaid" if reason is SuspensionReason.NON_PAYER else "walled-garden"
            assert answer.attributes["Mikrotik-Address-List"] == expected
    set_setting(stack.app, now, "radius_reject_reasons", "unregistered")
    force_state(stack.app, stack.world.service, "suspended", "unregistered")
    rejected = login(stack)
    assert rejected.code == "Access-Reject"
    assert rejected.attributes == {"Reply-Message": "suspended: unregistered"}
    set_setting(stack.app, now, "radius_reject_reasons", "")
    force_state(stack.app, stack.world.service, "active")


def test_unknown_and_ended_are_rejected(stack: Stack) -> None:
    unknown = login(stack, username="nobody")
    assert unknown.code == "Access-Reject"
    assert unknown.attributes["Reply-Message"] == "unknown subscriber"
    force_state(stack.app, stack.world.service, "ended")
    assert login(stack).code == "Access-Reject"
    force_state(stack.app, stack.world.service, "active")


def test_accounting_reaches_ispbill_and_moves_fup_until_the_tier_action_fires(stack: Stack) -> None:
    with stack.app.uow() as uow:
        uow.session.execute(delete(UsageRecord).where(UsageRecord.service_id == stack.bob))
        uow.commit()
    force_state(stack.app, stack.bob, "active")
    assert accounting(stack, "Start", "fr-1").code == "Accounting-Response"
    assert login(stack, "bob", "bobpass1").attributes["Mikrotik-Rate-Limit"] == "10M/50M"
    # 1.5 GB: past tier 1 (1 GB, throttle to 5M/1M)
    assert (
        accounting(stack, "Interim-Update", "fr-1", "Acct-Output-Octets = 1500000000").code
        == "Accounting-Response"
    )
    assert login(stack, "bob", "bobpass1").attributes["Mikrotik-Rate-Limit"] == "1M/5M"
    # 1 gigaword + 1 GB = 5.29 GB: past tier 2 (2 GB, suspend)
    assert (
        accounting(
            stack, "Stop", "fr-1", "Acct-Output-Gigawords = 1", "Acct-Output-Octets = 1000000000"
        ).code
        == "Accounting-Response"
    )
    suspended = login(stack, "bob", "bobpass1")
    assert suspended.code == "Access-Accept"
    assert suspended.attributes["Reply-Message"] == "suspended: fup"
    with stack.app.uow() as uow:
        session = uow.session.scalars(
            select(RadiusSession).where(RadiusSession.acct_session_id == "fr-1")
        ).one()
        used = uow.session.scalars(
            select(UsageRecord).where(UsageRecord.service_id == stack.bob)
        ).one()
    assert session.stopped_at is not None
    assert session.output_bytes == 2**32 + 1_000_000_000
    assert used.bytes_total == 2**32 + 1_000_000_000
    assert used.tier == 2
