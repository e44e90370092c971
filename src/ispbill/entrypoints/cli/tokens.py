"""CLI for REST API tokens: ``ispbill tokens create|list|revoke``."""

from __future__ import annotations

import typer

from ispbill.entrypoints.cli.base import ACTOR, Cli, console, emit, unit_of_work
from ispbill.services.tokens import create_token, list_tokens, revoke_token

tokens_app = Cli(help="Bearer tokens of the REST API (roles admin, reseller, readonly).")


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="A name to recognise the token by."),
    role: str = typer.Option(..., "--role", help="admin, reseller or readonly."),
    reseller: str | None = typer.Option(None, "--reseller", help="Reseller id or name."),
) -> None:
    """Create a token; its secret is printed once and never stored."""
    with unit_of_work() as (uow, now):
        created = create_token(uow, name=name, role=role, reseller=reseller, now=now, actor=ACTOR)
    console.print(f"Token {created.token.id} ({created.token.role}) created. Keep it now:")
    typer.echo(created.plaintext)


@tokens_app.command("list")
def tokens_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every token (never its secret)."""
    with unit_of_work() as (uow, _now):
        rows = [
            {
                "id": t.id,
                "name": t.name,
                "role": t.role,
                "reseller_id": t.reseller_id,
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in list_tokens(uow)
        ]
    emit(rows, as_json=as_json, title="API tokens")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int = typer.Argument(..., help="Token id.")) -> None:
    """Revoke a token: requests bearing it are refused from now on."""
    with unit_of_work() as (uow, now):
        row = revoke_token(uow, token_id=token_id, now=now, actor=ACTOR)
    console.print(f"Token {row.id} revoked.")
