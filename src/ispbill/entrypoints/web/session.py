"""Who is browsing: a staff user of the console or a customer of the portal.

A staff user is a ``Principal`` (entrypoints/access.py, shared with the API), so the console asks
the very same questions as the API: ``may_see(customer)`` for a reseller's own customers (anyone
else's is a 404, as if it did not exist) and ``may_write`` for the read-only role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from ispbill.entrypoints.access import Owned, Principal
from ispbill.entrypoints.pages import app_of
from ispbill.use_cases.admin.web_auth import SessionPolicy, resolve_session
from ispbill.use_cases.queries import console_catalog

STAFF_COOKIE = "ispbill_console"
CUSTOMER_COOKIE = "ispbill_portal"
C = TypeVar("C", bound=Owned)


@dataclass(frozen=True)
class StaffPrincipal(Principal):
    """A signed-in staff user, checked by the API's role rules; events name the person."""

    locale: str = "en_US"

    @property
    def actor(self) -> str:
        return f"staff:{self.name}#{self.token_id}"


class SignInRequired(Exception):
    def __init__(self, login_url: str) -> None:
        super().__init__(login_url)
        self.login_url = login_url


def policy(request: Request) -> SessionPolicy:
    settings = app_of(request).settings
    return SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes),
        absolute=timedelta(hours=settings.session_max_hours),
    )


async def current_staff(request: Request) -> StaffPrincipal | None:
    app = app_of(request)
    secret = request.cookies.get(STAFF_COOKIE, "")
    rules = policy(request)

    def lookup() -> StaffPrincipal | None:
        with app.uow() as uow:
            found = resolve_session(
                uow, secret=secret, kind="staff", now=app.clock.now(), policy=rules
            )
            if found is None:
                return None
            assert found.staff_id is not None
            staff = console_catalog.staff_user(uow.session, found.staff_id)
            assert staff is not None
            return StaffPrincipal(
                staff.id, staff.username, staff.role, staff.reseller_id, locale=staff.locale
            )

    return await run_in_threadpool(lookup) if secret else None


async def require_staff(request: Request) -> StaffPrincipal:
    staff = await current_staff(request)
    if staff is None:
        raise SignInRequired("/console/login")
    return staff


def require_write(staff: Principal) -> None:
    if not staff.may_write:
        raise HTTPException(403, "a read-only user may only read")


def require_admin(staff: Principal) -> None:
    if staff.role != "admin":
        raise HTTPException(403, "only an admin may do this")


def require_global(staff: Principal) -> None:
    """Operator-wide lists that no customer scopes (bank statement lines): admin and
    read-only users, as the API's ``Operator`` dependency; never a reseller's user."""
    if not staff.is_global:
        raise HTTPException(403, "only an admin or a read-only user may see this")


def check_visible(staff: Principal, customer: C | None) -> C:
    """The customer, or a 404 for one this user may not see (never a 403)."""
    if customer is None or not staff.may_see(customer):
        raise HTTPException(404, "no such customer")
    return customer


async def current_customer_id(request: Request) -> int | None:
    app = app_of(request)
    secret = request.cookies.get(CUSTOMER_COOKIE, "")
    rules = policy(request)

    def lookup() -> int | None:
        with app.uow() as uow:
            found = resolve_session(
                uow, secret=secret, kind="customer", now=app.clock.now(), policy=rules
            )
            return found.customer_id if found else None

    return await run_in_threadpool(lookup) if secret else None


async def require_customer(request: Request) -> int:
    customer_id = await current_customer_id(request)
    if customer_id is None:
        raise SignInRequired("/portal/login")
    return customer_id
