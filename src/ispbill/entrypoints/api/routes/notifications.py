"""``/api/v1/notifications``: the customer e-mail outbox (collection reminders, suspension and restoration notices), for staff.

Listing is scoped like every list (a reseller's token sees its own customers' messages only);
a customer's portal session is refused, the outbox being the operator's view of delivery.
``retry`` puts a failed message back in the queue through the same use case as the console:
admin only, and another reseller's message is a 404 before it is a 403, as if absent.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.entrypoints.api.auth import Principal, Staff, not_found, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.schemas import NotificationOut, NotificationRetryIn
from ispbill.use_cases.notifications import mail_outbox as notifications
from ispbill.use_cases.queries import notification_lists
from ispbill.use_cases.queries.notification_lists import NotificationView, notification_view
from ispbill.use_cases.queries.operator_lists import NotificationFilter

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]
Status = Literal["pending", "sent", "failed"]
Kind = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_.]+$")]


def notification_out(row: NotificationView) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        recipients=list(row.recipients),
        subject=row.subject,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


@router.get("", response_model=Page[NotificationOut])
async def list_notifications(
    request: Request,
    caller: Staff,
    paging: Paging,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[Status | None, Query()] = None,
    kind: Kind = None,
) -> Page[NotificationOut]:
    """Customer e-mail, newest first: what is queued, what went out and what failed."""
    app = container(request)

    def work() -> Page[NotificationOut]:
        with app.uow() as uow:
            if customer_id is not None:
                require_customer(uow, caller, customer_id)
            found = notification_lists.list_notifications(
                uow,
                caller.reader,
                NotificationFilter(customer_id, status, kind),
                after=paging.after(newest_first=True),
                limit=paging.limit,
            )
            return page_of(found, notification_out, newest_first=True)

    return await call(work)


def visible_notification(uow: UnitOfWork, caller: Principal, notification_id: int) -> None:
    """A 404 for a message that is absent or of a customer the caller may not see."""
    if not notification_lists.is_visible(uow, caller.reader, notification_id):
        raise not_found("notification", notification_id)


@router.post("/{notification_id}/retry", response_model=NotificationOut)
async def retry_notification(
    notification_id: NotificationId, body: NotificationRetryIn, request: Request, caller: Staff
) -> NotificationOut:
    """Queue a failed message again, due now, its attempts started afresh (admin only). A
    sent or already queued message is refused (409, field ``status``)."""
    app = container(request)

    def work() -> NotificationOut:
        with app.uow() as uow:
            visible_notification(uow, caller, notification_id)
        if caller.role != "admin":
            raise ApiProblem(
                403, "only an admin token may do this", field="Authorization", rule="admin only"
            )
        with app.uow() as uow:
            row = notifications.retry_notification(
                uow,
                notification_ref=notification_id,
                reason=body.reason,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return notification_out(notification_view(row))

    return await call(work)
