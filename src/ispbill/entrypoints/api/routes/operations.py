"""The event log, operator settings, customer portal sessions and ``whoami``.

Events: every state change with actor, reason and figures, filterable by customer, kind,
subject and time, newest first, scoped like everything else. Settings: read by admin and
readonly tokens, changed by admins, one key at a time, parsed and checked by the settings use
case. Sessions: an admin (or a reseller, for its own customers) opens a customer's portal
session; the web portal uses the same use case after its own login.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin, Caller, Operator, Staff, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import (
    EventOut,
    Instant,
    SessionIn,
    SessionOut,
    SettingIn,
    WhoAmI,
)
from ispbill.use_cases.admin.api_tokens import open_customer_session
from ispbill.use_cases.queries import event_lists
from ispbill.use_cases.queries.event_lists import EventView
from ispbill.use_cases.queries.operator_lists import EventFilter

router = APIRouter(prefix="/api/v1", tags=["operations"])
SETTING_KEYS = tuple(settings_store.OperatorSettings.model_fields)
Word = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_.]+$")]


def event_out(row: EventView) -> EventOut:
    return EventOut(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        customer_id=row.customer_id,
        reason=row.reason,
        figures=dict(row.figures),
    )


@router.get("/events", response_model=Page[EventOut], tags=["events"])
async def list_events(
    request: Request,
    caller: Caller,
    paging: Paging,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kind: Word = None,
    kind_prefix: Word = None,
    subject_type: Word = None,
    subject_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    occurred_from: Annotated[Instant | None, Query()] = None,
    occurred_to: Annotated[Instant | None, Query()] = None,
) -> Page[EventOut]:
    """Events, newest first. ``kind_prefix=service.`` lists every service transition. Events
    of no customer (operator-wide) are shown to admin and readonly tokens only."""
    app = container(request)

    def work() -> Page[EventOut]:
        wanted = EventFilter(
            customer_id=customer_id,
            kind=kind,
            kind_prefix=kind_prefix,
            subject_type=subject_type,
            subject_id=subject_id,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
        )
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            found = event_lists.list_events(
                uow,
                caller.reader,
                wanted,
                after=paging.after(newest_first=True),
                limit=paging.limit,
            )
            return page_of(found, event_out, newest_first=True)

    return await call(work)


@router.get("/settings", response_model=settings_store.OperatorSettings, tags=["settings"])
async def get_settings(request: Request, _caller: Operator) -> Any:
    """Every operator setting with its current value."""
    app = container(request)

    def work() -> Any:
        with app.uow() as uow:
            return settings_store.load(uow)

    return await call(work)


@router.put("/settings/{key}", response_model=settings_store.OperatorSettings, tags=["settings"])
async def put_setting(
    key: Annotated[str, Path(max_length=64, pattern=r"^[a-z_]+$")],
    body: SettingIn,
    request: Request,
    caller: Admin,
) -> Any:
    """Change one setting; the value is text parsed as the setting's type (null clears it)."""
    app = container(request)

    def work() -> Any:
        with app.uow() as uow:
            return settings_store.set_value(
                uow, key=key, raw=body.value or "", now=app.clock.now(), actor=caller.actor
            )

    return await call(work)


@router.post("/sessions", response_model=SessionOut, status_code=201, tags=["sessions"])
async def open_session(body: SessionIn, request: Request, caller: Staff) -> SessionOut:
    """Open a customer's portal session: a bearer token that sees only that customer's data
    and expires. The token is in this answer only."""
    app = container(request)
    minutes = body.minutes or app.settings.customer_session_minutes

    def work() -> SessionOut:
        with app.uow() as uow:
            require_customer(uow, caller, body.customer_id)
        with app.uow() as uow:
            created = open_customer_session(
                uow,
                customer_id=body.customer_id,
                lifetime=timedelta(minutes=minutes),
                now=app.clock.now(),
                actor=caller.actor,
                reseller_id=caller.reseller_id if caller.role == "reseller" else None,
            )
            assert created.token.expires_at is not None
            return SessionOut(
                token=created.plaintext,
                customer_id=body.customer_id,
                expires_at=created.token.expires_at,
            )

    return await call(work)


@router.get("/whoami", response_model=WhoAmI, tags=["sessions"])
async def whoami(caller: Caller) -> WhoAmI:
    """The caller's token: its role and scope."""
    return WhoAmI(
        token_id=caller.token_id,
        role=caller.role,
        reseller_id=caller.reseller_id,
        customer_id=caller.customer_id,
    )
