"""Operator-wide lists in the console: the event log (``/console/events``), payments
(``/console/payments``), invoices and credit notes (``/console/invoices``), automatic top-up
rules (``/console/top-ups``) and customer e-mail (``/console/notifications``, where an admin
may queue a failed message again).

The filters of the API's ``GET /events``, ``/payments``, ``/invoices`` and ``/credit-notes``,
read through ``use_cases/queries/operator_lists.py`` with the same scoping: a reseller's user sees its own
customers' rows only, in the page and in the CSV, and filtering by anyone else's customer is a
404; admin and read-only users see everything. A filter the list cannot take is refused next
to the form (422, the field named). Pages go by keyset (``?before=<id>``, newest first); the
CSV is every matching row, streamed a batch at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.invoicing import DocumentKind, InvoiceStatus
from ispbill.domain.money import Money
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import (
    Staff,
    form_of,
    parse_day,
    scope_of,
    staff_page,
    work,
)
from ispbill.entrypoints.web.csvout import csv_stream
from ispbill.entrypoints.web.session import (
    StaffPrincipal,
    check_visible,
    require_admin,
    require_write,
)
from ispbill.use_cases.notifications import mail_outbox as notifications
from ispbill.use_cases.queries import console_catalog
from ispbill.use_cases.queries import operator_lists as lists
from ispbill.use_cases.queries.dashboard import Scope

router = APIRouter(prefix="/console", include_in_schema=False)
EXPORT_BATCH = 1000
FIGURES_SHOWN = 120  # characters of an event's figures in the table; the CSV has them all
EVENT_WORD = re.compile(r"^[a-z0-9_.]{1,64}$")  # the API's pattern for kinds and subject types
METHOD = re.compile(r"^[a-z0-9_]{1,32}$")
DOCUMENT_KINDS = [k.value for k in DocumentKind]
STATUSES = [s.value for s in InvoiceStatus]
Cells = tuple[object, ...]


@dataclass(frozen=True)
class ListSpec:
    """What differs between the three lists; showing, paging and exporting are shared."""

    path: str
    template: str
    fields: tuple[str, ...]
    parse: Callable[[Mapping[str, str]], Any]
    query: Callable[[Scope, Any], Any]
    header: tuple[str, ...]
    cells: Callable[[Any, Mapping[int, str]], Cells]
    csv_name: str


# -- parsing the filters ----------------------------------------------------------------------


def _number(text: str, field: str, top: int = MAX_ID) -> int | None:
    text = text.removeprefix("#")
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= top:
        raise ValidationError(field, "must be a whole number like 42")
    return int(text)


def _word(text: str, field: str, pattern: re.Pattern[str]) -> str | None:
    if not text:
        return None
    if not pattern.match(text):
        raise ValidationError(field, "may hold only lowercase letters, digits, _ and .")
    return text


def _days(params: Mapping[str, str]) -> tuple[date | None, date | None]:
    """The ``from``..``to`` range, both days included."""
    start, end = parse_day(params.get("from", ""), "from"), parse_day(params.get("to", ""), "to")
    if start and end and end < start:
        raise ValidationError("to", "must not be before from")
    return start, end


def _instants(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """The day range as instants ``[from 00:00, the day after to 00:00)`` in UTC, the time
    zone the console shows."""
    start, end = _days(params)
    return (
        datetime.combine(start, time(), UTC) if start else None,
        datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
    )


def _event_filter(params: Mapping[str, str]) -> lists.EventFilter:
    """``kind`` ending in a dot (``service.``) is a prefix: every kind that starts so."""
    kind = _word(params.get("kind", ""), "kind", EVENT_WORD)
    start, end = _instants(params)
    return lists.EventFilter(
        customer_id=_number(params.get("customer", ""), "customer"),
        kind=kind if kind and not kind.endswith(".") else None,
        kind_prefix=kind if kind and kind.endswith(".") else None,
        subject_type=_word(params.get("subject_type", ""), "subject_type", EVENT_WORD),
        subject_id=_number(params.get("subject_id", ""), "subject_id", 2**62),
        occurred_from=start,
        occurred_to=end,
    )


def _payment_filter(params: Mapping[str, str]) -> lists.PaymentFilter:
    start, end = _instants(params)
    return lists.PaymentFilter(
        customer_id=_number(params.get("customer", ""), "customer"),
        method=_word(params.get("method", ""), "method", METHOD),
        received_from=start,
        received_to=end,
        reversed=_yes_no(params.get("reversed", ""), "reversed"),
    )


def _document_filter(params: Mapping[str, str]) -> lists.DocumentFilter:
    kind, status = params.get("kind", ""), params.get("status", "")
    if kind and kind not in DOCUMENT_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(DOCUMENT_KINDS)}")
    if status and status not in STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
    start, end = _days(params)
    return lists.DocumentFilter(
        kinds=(kind,) if kind else tuple(DOCUMENT_KINDS),
        customer_id=_number(params.get("customer", ""), "customer"),
        status=status or None,
        issued_from=start,
        issued_to=end,
    )


def _yes_no(text: str, field: str) -> bool | None:
    if text not in ("", "yes", "no"):
        raise ValidationError(field, "must be yes or no")
    return None if not text else text == "yes"


def _top_up_filter(params: Mapping[str, str]) -> lists.TopUpFilter:
    return lists.TopUpFilter(
        customer_id=_number(params.get("customer", ""), "customer"),
        enabled=_yes_no(params.get("enabled", ""), "enabled"),
    )


def _notification_filter(params: Mapping[str, str]) -> lists.NotificationFilter:
    status = params.get("status", "")
    if status and status not in notifications.STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(notifications.STATUSES)}")
    return lists.NotificationFilter(
        customer_id=_number(params.get("customer", ""), "customer"), status=status or None
    )


# -- rows as CSV cells -------------------------------------------------------------------------


def _amount(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).to_decimal():f}"


def _figures(figures: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(figures or {}), sort_keys=True, ensure_ascii=False, default=str)


def _event_cells(e: Any, names: Mapping[int, str]) -> Cells:
    return (
        e.id,
        e.occurred_at.isoformat(),
        e.actor,
        e.kind,
        e.subject_type,
        e.subject_id,
        e.customer_id,
        names.get(e.customer_id, "") if e.customer_id else "",
        e.reason,
        _figures(e.figures),
    )


def _payment_cells(p: Any, names: Mapping[int, str]) -> Cells:
    return (
        p.id,
        p.received_at.isoformat(),
        p.recorded_at.isoformat(),
        p.customer_id,
        names.get(p.customer_id, ""),
        p.method,
        p.reference,
        _amount(p.amount_minor, p.currency),
        p.currency,
        "yes" if p.reversed_by_id else "no",
        p.reversed_by_id,
    )


def _document_cells(i: Any, names: Mapping[int, str]) -> Cells:
    return (
        i.number,
        i.kind,
        i.customer_id,
        names.get(i.customer_id, ""),
        i.issue_date.isoformat(),
        i.due_date.isoformat(),
        i.status,
        _amount(i.gross_minor, i.currency),
        _amount(i.paid_minor, i.currency),
        i.currency,
        i.corrects_id,
    )


def _top_up_cells(r: Any, names: Mapping[int, str]) -> Cells:
    return (
        r.id,
        r.customer_id,
        names.get(r.customer_id, ""),
        _amount(r.threshold_minor, r.currency),
        _amount(r.amount_minor, r.currency),
        r.currency,
        r.gateway,
        r.method_reference,
        "yes" if r.enabled else "no",
        r.updated_at.isoformat(),
    )


def _notification_cells(n: Any, names: Mapping[int, str]) -> Cells:
    """What was sent to whom and how it went; the message body stays out (the subject says
    what it was), and nothing of the relay's settings is stored to show."""
    return (
        n.id,
        n.created_at.isoformat(),
        n.customer_id,
        names.get(n.customer_id, ""),
        n.kind,
        " ".join(n.recipients),
        notifications.subject(n),
        n.status,
        n.attempts,
        n.last_error,
        n.sent_at.isoformat() if n.sent_at else "",
    )


EVENTS = ListSpec(
    path="/console/events",
    template="console/events.html",
    fields=("customer", "kind", "subject_type", "subject_id", "from", "to"),
    parse=_event_filter,
    query=lists.events_query,
    header=(
        "id",
        "occurred_at",
        "actor",
        "kind",
        "subject_type",
        "subject_id",
        "customer_id",
        "customer_name",
        "reason",
        "figures",
    ),
    cells=_event_cells,
    csv_name="events.csv",
)
PAYMENTS = ListSpec(
    path="/console/payments",
    template="console/payments.html",
    fields=("customer", "method", "from", "to", "reversed"),
    parse=_payment_filter,
    query=lists.payments_query,
    header=(
        "id",
        "received_at",
        "recorded_at",
        "customer_id",
        "customer_name",
        "method",
        "reference",
        "amount",
        "currency",
        "reversed",
        "reversed_by_transaction",
    ),
    cells=_payment_cells,
    csv_name="payments.csv",
)
DOCUMENTS = ListSpec(
    path="/console/invoices",
    template="console/invoices.html",
    fields=("customer", "kind", "status", "from", "to"),
    parse=_document_filter,
    query=lists.documents_query,
    header=(
        "number",
        "kind",
        "customer_id",
        "customer_name",
        "issue_date",
        "due_date",
        "status",
        "total",
        "paid",
        "currency",
        "corrects_id",
    ),
    cells=_document_cells,
    csv_name="invoices.csv",
)


TOP_UPS = ListSpec(
    path="/console/top-ups",
    template="console/top_ups.html",
    fields=("customer", "enabled"),
    parse=_top_up_filter,
    query=lists.top_ups_query,
    header=(
        "id",
        "customer_id",
        "customer_name",
        "threshold",
        "amount",
        "currency",
        "gateway",
        "method_reference",
        "enabled",
        "updated_at",
    ),
    cells=_top_up_cells,
    csv_name="top-up-rules.csv",
)


NOTIFICATIONS = ListSpec(
    path="/console/notifications",
    template="console/notifications.html",
    fields=("customer", "status"),
    parse=_notification_filter,
    query=lists.notifications_query,
    header=(
        "id",
        "queued_at",
        "customer_id",
        "customer_name",
        "kind",
        "recipients",
        "subject",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    ),
    cells=_notification_cells,
    csv_name="notifications.csv",
)


# -- showing a list ----------------------------------------------------------------------------


def compact(figures: Mapping[str, Any] | None) -> str:
    """An event's figures on one short line (``balance=-1200, due=2000``)."""
    text = ", ".join(f"{key}={value}" for key, value in sorted((figures or {}).items()))
    return text if len(text) <= FIGURES_SHOWN else text[: FIGURES_SHOWN - 1] + "…"


def _params(request: Request, spec: ListSpec) -> dict[str, str]:
    """The list's own filters from the query string, trimmed (anything else is ignored)."""
    return {f: request.query_params.get(f, "").strip()[:100] for f in spec.fields}


def _url(spec: ListSpec, params: Mapping[str, str], **extra: object) -> str:
    query = {k: v for k, v in params.items() if v} | {k: str(v) for k, v in extra.items()}
    return f"{spec.path}?{urlencode(query)}" if query else spec.path


async def _check_customer(request: Request, staff: StaffPrincipal, customer_id: int) -> None:
    """Filtering by a customer this user may not see is a 404, as in the API."""
    await work(
        request,
        lambda uow, _now: check_visible(staff, console_catalog.customer(uow.session, customer_id)),
    )


async def _batches(request: Request, spec: ListSpec, query: Any) -> AsyncIterator[list[Cells]]:
    """Every matching row, newest first, a batch at a time while the CSV is sent."""
    before: int | None = None
    while True:
        rows, before = await work(request, _batch_job(spec, query, before))
        yield rows
        if before is None:
            return


Batch = tuple[list[Cells], int | None]


def _batch_job(
    spec: ListSpec, query: Any, before: int | None
) -> Callable[[UnitOfWork, datetime], Batch]:
    """One export batch read in its own short transaction, as cells (the rows stay behind)."""

    def job(uow: UnitOfWork, _now: datetime) -> Batch:
        found = lists.page(uow.session, query, before=before, limit=EXPORT_BATCH)
        return [spec.cells(r, found.names) for r in found.rows], found.next_before

    return job


async def _show(
    request: Request, staff: StaffPrincipal, spec: ListSpec, refused: str | None = None
) -> Response:
    """The list's page; ``refused`` is a write's refusal to show above it (a 422)."""
    params = _params(request, spec)
    context: dict[str, Any] = {
        "params": params,
        "csv_url": _url(spec, params, format="csv"),
        "kinds": DOCUMENT_KINDS,
        "statuses": STATUSES,
        "notification_statuses": notifications.STATUSES,
        "subject_of": notifications.subject,
        "compact": compact,
        "figures_json": _figures,
    }
    try:
        wanted = spec.parse(params)
        before = _number(request.query_params.get("before", "").strip(), "before")
    except ValidationError as exc:
        context |= {"listed": lists.Listed([], {}, None), "next_url": None, "error": str(exc)}
        return staff_page(request, staff, spec.template, context, status=422)
    if wanted.customer_id is not None:
        await _check_customer(request, staff, wanted.customer_id)
    query = spec.query(scope_of(staff), wanted)
    if request.query_params.get("format") == "csv":
        return csv_stream(spec.csv_name, spec.header, _batches(request, spec, query))
    listed = await work(request, lambda uow, _now: lists.page(uow.session, query, before=before))
    next_url = _url(spec, params, before=listed.next_before) if listed.next_before else None
    context |= {"listed": listed, "next_url": next_url, "error": refused}
    return staff_page(request, staff, spec.template, context, status=422 if refused else 200)


@router.get("/events")
async def event_log(request: Request, staff: Staff) -> Response:
    """Every event the user may see, newest first."""
    return await _show(request, staff, EVENTS)


@router.get("/payments")
async def payments(request: Request, staff: Staff) -> Response:
    """Every payment the user may see, newest first."""
    return await _show(request, staff, PAYMENTS)


@router.get("/invoices")
async def documents(request: Request, staff: Staff) -> Response:
    """Invoices, statements and credit notes the user may see, newest first."""
    return await _show(request, staff, DOCUMENTS)


@router.get("/top-ups")
async def top_up_rules(request: Request, staff: Staff) -> Response:
    """Every automatic top-up rule the user may see; each is set on its customer's page."""
    return await _show(request, staff, TOP_UPS)


@router.get("/notifications")
async def notification_list(request: Request, staff: Staff) -> Response:
    """Customer e-mail the user may see, newest first: queued, sent and failed."""
    return await _show(request, staff, NOTIFICATIONS)


@router.post("/notifications/{notification_id}/retry")
async def retry_notification(request: Request, staff: Staff, notification_id: int) -> Response:
    """Queue a failed message again now (admin only, with a reason), through the use case the
    API's ``POST /notifications/{id}/retry`` calls; another reseller's message is a 404."""
    require_write(staff)
    form = await form_of(request)

    def visible(uow: UnitOfWork, _now: datetime) -> None:
        known = 0 < notification_id <= MAX_ID
        found = console_catalog.notification(uow.session, notification_id) if known else None
        if found is None:
            raise HTTPException(404, "no such notification")
        check_visible(staff, console_catalog.customer(uow.session, found.customer_id))

    await work(request, visible)
    require_admin(staff)

    def act(uow: UnitOfWork, now: datetime) -> object:
        return notifications.retry_notification(
            uow,
            notification_ref=notification_id,
            reason=form.get("reason", ""),
            now=now,
            actor=staff.actor,
        )

    try:
        await work(request, act)
    except IspbillError as exc:
        return await _show(request, staff, NOTIFICATIONS, refused=str(exc))
    return redirect(request, f"/console/notifications#notification-{notification_id}")
