"""Who is calling: ``Authorization: Bearer <token>`` resolved to a role, and what it may reach.

* ``admin`` may do everything; ``readonly`` may read everything and write nothing.
* ``reseller`` reads and writes its own customers and everything under them (services,
  wallets, invoices, payments, events, top-up rules); anyone else's is a 404, exactly as if it
  did not exist. Operator-wide resources (ticks, settings, card batches, bank statements) are a
  403: their existence is no secret.
* ``customer`` is a portal session of one customer: it reads that customer's own data and may
  only do what the portal offers (redeem a refill card, reactivate a paused service); every
  other route is a 403, every other customer's object a 404.

Scoping is done in one place: ``Principal.reader`` is the caller's ``Scope``, which the read
models (``use_cases/queries/``) apply to every list and every single record they load, and
``require_customer`` answers for one customer, so no route decides it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.entrypoints import access
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem
from ispbill.use_cases.admin.api_tokens import TokenHolder, authenticate
from ispbill.use_cases.queries import customer_lists
from ispbill.use_cases.queries.dashboard import Scope

READS = ("GET", "HEAD", "OPTIONS")
# Routes (by function name) a customer's portal session may call besides reading its own data.
PORTAL_WRITES = frozenset({"redeem_card", "reactivate_service", "promise"})
# Reads a customer session may make: its own customer, wallet, services, invoices, payments...
PORTAL_READS = frozenset(
    {
        "get_customer",
        "get_wallet",
        "list_ledger",
        "preview_customer",
        "list_services",
        "get_service",
        "list_invoices",
        "get_invoice",
        "invoice_pdf",
        "list_credit_notes",
        "list_payments",
        "get_payment",
        "list_plans",
        "get_plan",
        "list_top_up_rules",
        "list_events",
        "whoami",
        "why",
        "list_pages",
        "get_page",
    }
)


@dataclass(frozen=True)
class Principal(access.Principal):
    """A caller of the API: the rules shared with the web's signed-in users
    (``entrypoints/access.py``), and the caller's ``Scope`` for the read models."""

    @property
    def reader(self) -> Scope:
        """Whose customers this caller sees, for the read models: a reseller its own, a
        customer session only itself, admin and readonly everyone."""
        if self.role == "reseller":
            return Scope(reseller_id=self.reseller_id)
        if self.role == "customer":
            return Scope(customer_id=self.customer_id)
        return Scope()


def require_customer(uow: UnitOfWork, caller: Principal, customer_id: int | None) -> None:
    """A 404 (never a 403) when the customer is absent or not this caller's."""
    if not customer_lists.is_visible(uow, caller.reader, customer_id):
        raise not_found("customer", customer_id)


def not_found(what: str, ref: object) -> ApiProblem:
    """The one refusal for "absent" and "not yours", so neither leaks which it was."""
    return ApiProblem(
        404, f"{what}: no {what.replace('_', ' ')} {ref!r}", field=what, rule="not found"
    )


# Publishes the bearer scheme in OpenAPI; the refusal is ours (401 problem+json, not a 403).
bearer = HTTPBearer(auto_error=False, description="An API token: `ispbill tokens create`.")


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return route.name if isinstance(route, APIRoute) else ""


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    secret = credentials.credentials.strip() if credentials else ""
    if not secret or not secret.isascii() or len(secret) > 200:
        raise ApiProblem(401, "a bearer token is required", field="Authorization", rule="required")
    app = container(request)
    touch = timedelta(seconds=app.settings.token_touch_seconds)

    def lookup() -> TokenHolder | None:
        with app.uow() as uow:
            return authenticate(uow, plaintext=secret, now=app.clock.now(), touch_every=touch)

    known = request.scope.get("ispbill.authenticated")  # set by the idempotency middleware
    token = known[1] if known and known[0] == secret else await run_in_threadpool(lookup)
    if token is None:
        raise ApiProblem(
            401, "the token is unknown, revoked or expired", field="Authorization", rule="invalid"
        )
    caller = Principal(token.id, token.name, token.role, token.reseller_id, token.customer_id)
    writing = request.method not in READS
    if writing and caller.role == "readonly":
        raise ApiProblem(
            403, "a readonly token may only read", field="Authorization", rule="readonly"
        )
    if caller.role == "customer":
        allowed = PORTAL_WRITES if writing else PORTAL_READS
        if _route_name(request) not in allowed:
            raise ApiProblem(
                403,
                "a customer session may only use the portal's own routes",
                field="Authorization",
                rule="customer session",
            )
    return caller


async def operator(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """Operator-wide resources: admin and readonly (readonly only reads)."""
    if not caller.is_global:
        raise ApiProblem(
            403,
            "only an admin or readonly token may do this",
            field="Authorization",
            rule="admin only",
        )
    return caller


async def admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.role != "admin":
        raise ApiProblem(
            403, "only an admin token may do this", field="Authorization", rule="admin only"
        )
    return caller


async def staff(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """Admin, readonly and reseller tokens (not a customer's portal session)."""
    if caller.role == "customer":
        raise ApiProblem(
            403,
            "a customer session may not do this",
            field="Authorization",
            rule="customer session",
        )
    return caller


Caller = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(operator)]
Admin = Annotated[Principal, Depends(admin)]
Staff = Annotated[Principal, Depends(staff)]
