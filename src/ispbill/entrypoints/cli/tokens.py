"""CLI for REST API tokens: ``ispbill tokens create|list|revoke|session``."""

from __future__ import annotations

from datetime import timedelta

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
from ispbill.use_cases.admin.api_tokens import (
    create_token,
    list_tokens,
    open_customer_session,
    revoke_token,
)
from ispbill.use_cases.catalog.name_lookups import customer_id_of, reseller_id_of

tokens_app = Cli(
    help="Bearer tokens of the REST API (roles admin, reseller, readonly; customer sessions)."
)


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="A name to recognise the token by."),
    role: str = typer.Option(..., "--role", help="admin, reseller or readonly."),
    reseller: str | None = typer.Option(None, "--reseller", help="Reseller id or name."),
) -> None:
    """Create a token; its secret is printed once and never stored."""
    with unit_of_work() as (uow, now):
        created = create_token(
            uow,
            name=name,
            role=role,
            reseller_id=find_optional(reseller_id_of, reseller or None),
            now=now,
            actor=ACTOR,
        )
    console.print(f"Token {created.token.id} ({created.token.role}) created. Keep it now:")
    typer.echo(created.plaintext)


@tokens_app.command("list")
def tokens_list(
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every token (never its secret)."""
    with unit_of_work() as (uow, _now):
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "role": t.role,
                "reseller_id": t.reseller_id,
                "customer_id": t.customer_id,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in list_tokens(uow)
        ]
    found = page_rows(rows, limit=limit, cursor=cursor, every=every)
    emit_listing(found, as_json=as_json, title="API tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int = typer.Argument(..., help="Token id.")) -> None:
    """Revoke a token: requests bearing it are refused from now on."""
    with unit_of_work() as (uow, now):
        row = revoke_token(uow, token_id=token_id, now=now, actor=ACTOR)
    console.print(f"Token {row.id} revoked.")


@tokens_app.command("session")
def tokens_session(
    customer: str = typer.Argument(..., help="Customer id or name."),
    minutes: int = typer.Option(720, "--minutes", min=1, help="Lifetime of the session."),
) -> None:
    """Open a customer's portal session: a token that sees only that customer's data."""
    with unit_of_work() as (uow, now):
        created = open_customer_session(
            uow,
            customer_id=find(customer_id_of, customer),
            lifetime=timedelta(minutes=minutes),
            now=now,
            actor=ACTOR,
        )
    console.print(
        f"Session {created.token.id} for customer {created.token.customer_id}, "
        f"valid until {created.token.expires_at}. Keep it now:"
    )
    typer.echo(created.plaintext)
