"""CLI for network enforcement: NAS records, service credentials, the FreeRADIUS
configuration, the CoA outbox worker and FUP usage. Thin: each command calls one use case."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from ispbill.adapters.radius.coa import PyradSender
from ispbill.adapters.radius.config import NasClient, RadiusConfig, SqlTarget, write_config
from ispbill.domain.errors import ValidationError
from ispbill.domain.plans import parse_data_volume
from ispbill.entrypoints.cli.base import (
    ACTOR,
    Cli,
    app_for_command,
    console,
    emit,
    emit_object,
    find,
    parse_instant,
    unit_of_work,
)
from ispbill.entrypoints.jobs import coa_sender
from ispbill.use_cases.catalog.name_lookups import service_id_of
from ispbill.use_cases.network import enforcement, usage
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.network.enforcement import RetryPolicy

nas_app = Cli(help="Network access servers (routers) FreeRADIUS hears from and CoA goes to.")
radius_app = Cli(help="FreeRADIUS: the configuration ispbill ships.")
outbox_app = Cli(help="The enforcement outbox: access changes on their way to the NAS.")
usage_app = Cli(help="Data usage per service per billing period (FUP limits).")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def register(app: typer.Typer, services_app: typer.Typer) -> None:
    """Add this module's commands to the ``ispbill`` command."""
    app.add_typer(nas_app, name="nas")
    app.add_typer(radius_app, name="radius")
    app.add_typer(outbox_app, name="outbox")
    app.add_typer(usage_app, name="usage")
    services_app.command("credentials")(services_credentials)
    services_app.command("identity")(services_identity)


@nas_app.command("add")
def nas_add(
    name: str = typer.Argument(..., help="A unique name, e.g. the router's hostname."),
    address: str = typer.Option(..., help="The NAS's IP address (its NAS-IP-Address)."),
    secret: str = typer.Option(..., help="The RADIUS shared secret (8-128 characters)."),
    coa_port: int = typer.Option(
        3799, help="CoA/Disconnect port (RFC 5176: 3799; MikroTik may use 1700)."
    ),
    vendor: str = typer.Option("mikrotik", help="mikrotik or generic (attribute map)."),
    no_message_authenticator: bool = typer.Option(
        False,
        "--no-message-authenticator",
        help="Accept Access-Requests without Message-Authenticator (old NAS firmware only).",
    ),
) -> None:
    """Add a NAS; regenerate the FreeRADIUS configuration afterwards (clients.conf)."""
    spec = network.NewNas(
        name=name,
        address=address,
        secret=secret,
        coa_port=coa_port,
        vendor=vendor,
        require_message_authenticator=not no_message_authenticator,
    )
    with app_for_command() as app, app.uow() as uow:
        row = network.add_nas(uow, spec=spec, now=app.clock.now(), actor=ACTOR)
    console.print(f"NAS {row.id} {row.name} at {row.address} ({row.vendor})", markup=False)


@nas_app.command("list")
def nas_list(as_json: bool = JSON) -> None:
    """NAS records (secrets are not printed)."""
    with unit_of_work() as (uow, _):
        rows = [
            {
                "id": n.id,
                "name": n.name,
                "address": n.address,
                "coa_port": n.coa_port,
                "vendor": n.vendor,
                "message_authenticator": n.require_message_authenticator,
            }
            for n in network.list_nas(uow)
        ]
    emit(rows, as_json=as_json, title="NAS")


def services_credentials(
    service: str = typer.Argument(..., help="Service id."),
    username: str | None = typer.Option(None, help="PPPoE / hotspot username."),
    password: str | None = typer.Option(None, help="Password (with --username)."),
    mac: str | None = typer.Option(None, "--mac", help="MAC address (IPoE)."),
    circuit_id: str | None = typer.Option(None, help="DHCP option 82 circuit id (IPoE)."),
    static_ip: str | None = typer.Option(None, help="A fixed address (Framed-IP-Address)."),
    nas: str | None = typer.Option(None, help="Only this NAS (name, id or address) may log it in."),
    pap_only: bool = typer.Option(
        False, "--pap-only", help="Store a salted SHA-512 instead of the password (no CHAP)."
    ),
) -> None:
    """Set how a service logs in on the network (replaces what was set before)."""
    with app_for_command() as app:
        spec = network.NewIdentity(
            service_id=find(service_id_of, service),
            username=username,
            password=password,
            mac_address=mac,
            circuit_id=circuit_id,
            static_ip=static_ip,
            nas=nas,
            pap_only=pap_only,
        )
        with app.uow() as uow:
            row = network.set_identity(uow, spec=spec, now=app.clock.now(), actor=ACTOR)
    shown = row.username or row.mac_address or row.circuit_id
    console.print(f"service {row.service_id}: network identity {shown}", markup=False)


def services_identity(
    service: str = typer.Argument(..., help="Service id."), as_json: bool = JSON
) -> None:
    """Show a service's network identity (the password is not printed)."""
    with unit_of_work() as (uow, _):
        row = network.identity_of(uow, find(service_id_of, service))
        shown = {
            "service": row.service_id,
            "username": row.username,
            "password_scheme": row.password_scheme if row.username else None,
            "mac_address": row.mac_address,
            "circuit_id": row.circuit_id,
            "static_ip": row.static_ip,
            "nas": row.nas_id,
        }
    emit_object(shown, as_json=as_json, title=f"Service {service} on the network")


@radius_app.command("config")
def radius_config(
    out: Path = typer.Option(..., "--out", help="Directory to write (created if missing)."),
    api_url: str = typer.Option(
        "http://127.0.0.1:8080", help="Where FreeRADIUS reaches ispbill (`ispbill serve`)."
    ),
    listen: str = typer.Option("*", help="Address FreeRADIUS listens on."),
    auth_port: int = typer.Option(1812, help="Authentication port."),
    acct_port: int = typer.Option(1813, help="Accounting port."),
    reject_delay: int = typer.Option(1, help="Seconds an Access-Reject is held back (0-5)."),
    run_as: str | None = typer.Option(None, help="User and group to drop to (Debian: freerad)."),
    authorize: str = typer.Option(
        "rest",
        help="rest: ask ispbill over HTTP; sql: read the answers ispbill precomputes in its "
        "database (rlm_sql, faster), asking ispbill only for what they do not cover.",
    ),
) -> None:
    """Write a FreeRADIUS 3.2 configuration directory (rest module, site, clients from the NAS
    table); start it with `freeradius -f -d DIR`."""
    with app_for_command() as app, app.uow() as uow:
        token = app.settings.radius_token
        if token is None:
            raise ValidationError(
                "radius_token", "set ISPBILL_RADIUS_TOKEN first (the API checks it)"
            )
        clients = [
            NasClient(n.name, n.address, n.secret, n.require_message_authenticator)
            for n in network.list_nas(uow)
        ]
    written = write_config(
        RadiusConfig(
            out=out,
            api_url=api_url,
            token=token.get_secret_value(),
            clients=clients,
            listen=listen,
            auth_port=auth_port,
            acct_port=acct_port,
            reject_delay=reject_delay,
            run_as=run_as,
            authorize=authorize,
            sql=SqlTarget.from_url(app.settings.database_url) if authorize == "sql" else None,
        )
    )
    console.print(f"wrote {len(written)} files to {out} ({len(clients)} NAS clients)", markup=False)
    console.print(f"check: freeradius -C -d {out.resolve()}", markup=False)
    console.print(f"start: freeradius -f -d {out.resolve()}", markup=False)


@outbox_app.command("run")
def outbox_run(
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then stop."),
    poll: float = typer.Option(0.5, min=0.05, max=60, help="Seconds between polls (SQLite)."),
    timeout: float = typer.Option(1.0, min=0.1, max=30, help="Seconds to wait for a NAS answer."),
) -> None:
    """Send CoA / Disconnect requests for access changes, retrying until the NAS answers."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with app_for_command() as app:
        sent = coa_sender.run_worker(
            app.uow_factory,
            PyradSender(timeout_s=timeout),
            clock=app.clock.now,
            database_url=app.settings.database_url,
            once=once,
            retry=RetryPolicy.from_settings(app.settings),
            poll_s=poll,
        )
    console.print(f"{sent} deliveries", markup=False)


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(None, help="pending, done or dead."),
    as_json: bool = JSON,
) -> None:
    """Recent outbox commands with their outcome."""
    with unit_of_work() as (uow, _):
        rows: list[dict[str, Any]] = [
            {
                "id": c.id,
                "service": c.service_id,
                "event": c.event_kind,
                "status": c.status,
                "attempts": c.attempts,
                "created_at": c.created_at,
                "completed_at": c.completed_at,
                "error": c.last_error,
                "results": c.results if as_json else len(c.results or {}),
            }
            for c in enforcement.commands(uow, status=status)
        ]
    emit(rows, as_json=as_json, title="Enforcement outbox")


@usage_app.command("add")
def usage_add(
    service: str = typer.Argument(..., help="Service id."),
    amount: str = typer.Argument(..., help="Bytes, or a volume such as 5GB or 500MB."),
    at: str | None = typer.Option(None, "--at", help="When the data was used (default: now)."),
) -> None:
    """Record data usage by hand; a FUP tier it reaches acts at once (throttle or suspend)."""
    used = int(amount) if amount.strip().isdigit() else parse_data_volume(amount, "bytes")
    service_id = _service_id(service)
    with app_for_command() as app, app.uow() as uow:
        now = app.clock.now()
        uow.begin_write()
        result = usage.add_usage(
            uow,
            service_id=service_id,
            used_bytes=used,
            at=parse_instant(at, "at") if at else now,
            now=now,
            actor=ACTOR,
        )
        uow.commit()
    step = f"; FUP tier {result.step.tier.tier}: {result.step.tier.action}" if result.step else ""
    console.print(
        f"service {service_id}: {result.bytes_total} bytes in the period from "
        f"{result.period.start}{step}",
        markup=False,
    )


@usage_app.command("show")
def usage_show(
    service: str = typer.Argument(..., help="Service id."), as_json: bool = JSON
) -> None:
    """Usage per billing period with the FUP tier reached."""
    with unit_of_work() as (uow, _):
        rows = [
            {
                "period_start": r.period_start,
                "period_end": r.period_end,
                "bytes": r.bytes_total,
                "tier": r.tier,
                "throttle": f"{r.throttle_down_kbps}k/{r.throttle_up_kbps}k"
                if r.throttle_down_kbps
                else None,
                "reset": r.reset_done,
            }
            for r in usage.usage_of(uow, _service_id(service))
        ]
    emit(rows, as_json=as_json, title=f"Usage of service {service}")


@usage_app.command("reset")
def usage_reset() -> None:
    """Lift the FUP throttles and suspensions of billing periods that have ended."""
    with app_for_command() as app, app.uow() as uow:
        count = usage.reset_finished_periods(uow, now=app.clock.now(), actor=ACTOR)
    console.print(f"{count} usage periods reset", markup=False)


def _service_id(text: str) -> int:
    cleaned = text.strip()
    if not (cleaned.isascii() and cleaned.isdigit()) or not 0 < int(cleaned) < 2**63:
        raise ValidationError("service", f"{text!r}: give the service id (a number)")
    return int(cleaned)
