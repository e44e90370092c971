"""CLI for the people of the web: ``ispbill staff add|list|password|totp|disable|enable`` and
``ispbill portal login`` (a customer's portal sign-in)."""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    console,
    emit_listing,
    find,
    find_optional,
    page_rows,
    unit_of_work,
)
from ispbill.use_cases.admin import web_auth
from ispbill.use_cases.catalog.name_lookups import customer_id_of, reseller_id_of

staff_app = Cli(help="Staff users of the web console (roles admin, reseller, readonly).")
portal_app = Cli(help="Customers' sign-in to the web portal.")

PASSWORD = typer.Option(
    ...,
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    envvar="ISPBILL_STAFF_PASSWORD",
    help="At least 10 characters (prompted when left out).",
)


@staff_app.command("add")
def staff_add(
    username: str = typer.Argument(..., help="The name to sign in with."),
    role: str = typer.Option(..., "--role", help="admin, reseller or readonly."),
    reseller: str | None = typer.Option(None, "--reseller", help="Reseller id or name."),
    password: str = PASSWORD,
) -> None:
    """Create a staff user (its password is stored as an argon2 hash)."""
    with unit_of_work() as (uow, now):
        row = web_auth.add_staff(
            uow,
            username=username,
            password=password,
            role=role,
            reseller_id=find_optional(reseller_id_of, reseller or None),
            now=now,
            actor=ACTOR,
        )
    console.print(f"Staff user {row.username} ({row.role}) created.", markup=False)


@staff_app.command("list")
def staff_list(
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every staff user (never a password or a TOTP secret)."""
    with unit_of_work() as (uow, _now):
        rows = [
            {
                "id": s.id,
                "username": s.username,
                "role": s.role,
                "reseller_id": s.reseller_id,
                "totp": s.totp_secret is not None,
                "created_at": s.created_at,
                "disabled_at": s.disabled_at,
            }
            for s in web_auth.list_staff(uow)
        ]
    found = page_rows(rows, limit=limit, cursor=cursor, every=every)
    emit_listing(found, as_json=as_json, title="Staff users")


@staff_app.command("password")
def staff_password(username: str = typer.Argument(...), password: str = PASSWORD) -> None:
    """Set a new password."""
    with unit_of_work() as (uow, now):
        web_auth.set_staff_password(uow, username=username, password=password, now=now, actor=ACTOR)
    console.print(f"Password of {username} changed.", markup=False)


@staff_app.command("totp")
def staff_totp(
    username: str = typer.Argument(...),
    off: bool = typer.Option(False, "--off", help="Remove the second factor."),
) -> None:
    """Require a TOTP code at sign-in; prints the otpauth:// URI for an authenticator app."""
    with unit_of_work() as (uow, now):
        if off:
            web_auth.disable_totp(uow, username=username, now=now, actor=ACTOR)
            console.print(f"Second factor of {username} removed.", markup=False)
            return
        uri = web_auth.enable_totp(uow, username=username, now=now, actor=ACTOR)
    console.print("Add this to an authenticator app (shown once):", markup=False)
    typer.echo(uri)


@staff_app.command("disable")
def staff_disable(username: str = typer.Argument(...)) -> None:
    """Stop a user signing in and end its open sessions."""
    with unit_of_work() as (uow, now):
        web_auth.set_staff_enabled(uow, username=username, enabled=False, now=now, actor=ACTOR)
    console.print(f"{username} disabled.", markup=False)


@staff_app.command("enable")
def staff_enable(username: str = typer.Argument(...)) -> None:
    """Let a disabled user sign in again."""
    with unit_of_work() as (uow, now):
        web_auth.set_staff_enabled(uow, username=username, enabled=True, now=now, actor=ACTOR)
    console.print(f"{username} enabled.", markup=False)


@portal_app.command("login")
def portal_login(
    customer: str = typer.Argument(..., help="Customer id or name."),
    email: str = typer.Option(..., "--email", help="The address the customer signs in with."),
    password: str | None = typer.Option(
        None,
        "--password",
        envvar="ISPBILL_PORTAL_PASSWORD",
        help="Optional: without one, the customer signs in through e-mailed links.",
    ),
) -> None:
    """Let a customer sign in to the portal."""
    with unit_of_work() as (uow, now):
        account = web_auth.set_portal_login(
            uow,
            customer_id=find(customer_id_of, customer),
            email=email,
            password=password,
            now=now,
            actor=ACTOR,
        )
    console.print(f"Customer {account.customer_id} signs in as {account.email}.", markup=False)
