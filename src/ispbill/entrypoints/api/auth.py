"""Who is calling: ``Authorization: Bearer <token>`` resolved to a role.

``admin`` may do everything, ``readonly`` may only read, ``reseller`` may read and write only the
customers of its reseller; another reseller's customer is a 404, exactly as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db.models import ApiToken, Customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem
from ispbill.services.tokens import authenticate


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: str
    reseller_id: int | None

    @property
    def actor(self) -> str:
        return f"api:{self.name}#{self.token_id}"

    @property
    def may_write(self) -> bool:
        return self.role != "readonly"

    def may_see(self, customer: Customer) -> bool:
        return self.role != "reseller" or customer.reseller_id == self.reseller_id

    def check_customer(self, customer: Customer, ref: object) -> None:
        """A 404 (never a 403) for a customer this caller may not see."""
        if not self.may_see(customer):
            raise ApiProblem(
                404, f"customer: no customer {ref!r}", field="customer", rule="not found"
            )


# Publishes the bearer scheme in OpenAPI; the refusal is ours (401 problem+json, not a 403).
bearer = HTTPBearer(auto_error=False, description="An API token: `ispbill tokens create`.")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    secret = credentials.credentials if credentials else ""
    if not secret.strip():
        raise ApiProblem(401, "a bearer token is required", field="Authorization")
    app = container(request)

    def lookup() -> ApiToken | None:
        with app.uow() as uow:
            return authenticate(uow, plaintext=secret.strip(), now=app.clock.now())

    token = await run_in_threadpool(lookup)
    if token is None:
        raise ApiProblem(401, "the token is unknown or revoked", field="Authorization")
    caller = Principal(token.id, token.name, token.role, token.reseller_id)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not caller.may_write:
        raise ApiProblem(403, "a readonly token may only read", rule="readonly")
    return caller


async def admin(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.role != "admin":
        raise ApiProblem(403, "only an admin token may do this", rule="admin only")
    return caller


Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(admin)]
