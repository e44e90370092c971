"""Customers in the console: the search, a new customer, the customer's page (wallet, services,
payments, invoices, events), its CSV lists, the tick preview, "Charge & Invoice" and the portal
login; and what the other customer pages share: checking the user may see the customer, and
running one write on it with a refusal shown next to its form.

Each write route checks the form's CSRF token, the user's role (``may_write``; a reseller's
user acts only on its own customers, anyone else's is a 404) and calls one use case; a refusal
is shown next to the form, with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import GATEWAY_NAMES
from ispbill.domain.calendar import CycleKind, local_midnight
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.errors import IspbillError, NotFound
from ispbill.domain.ledger import AccountKind
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.payments import BUILTIN_METHODS
from ispbill.entrypoints.pages import app_of, redirect
from ispbill.entrypoints.web.common import (
    Staff,
    form_of,
    parse_day,
    scope_of,
    staff_page,
    work,
)
from ispbill.entrypoints.web.console.editing import lines
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import StaffPrincipal, check_visible, require_write
from ispbill.use_cases.admin.web_auth import portal_account, set_portal_login
from ispbill.use_cases.billing import customer_pending, discounting, extras, scheduled_changes
from ispbill.use_cases.billing.invoice_documents import list_invoices
from ispbill.use_cases.billing.reevaluation import charge_and_invoice, preview
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.customer_records import ContactRecord, record_values
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, reseller_id_of
from ispbill.use_cases.collections.suspensions import profile_names
from ispbill.use_cases.network.identities import list_nas
from ispbill.use_cases.notifications import mail_outbox as notifications
from ispbill.use_cases.queries import console_catalog
from ispbill.use_cases.queries import dashboard as console_views
from ispbill.use_cases.queries.customer_detail import customer_detail
from ispbill.use_cases.service_lifecycle.explain import explain_service

router = APIRouter(prefix="/console", include_in_schema=False)
# What an operator records by hand: the domain's methods but a refill card's (a card is
# redeemed, by its code), then the operator's own (setting payment_methods).
HAND_METHODS = [
    method
    for method, account in BUILTIN_METHODS.items()
    if account is not AccountKind.REFILL_CARD_LIABILITY
]
# The cycles a new customer may be given here, the usual one first (the form's default); the
# form has no count for "every N days/months".
FORM_CYCLES = [
    c.value
    for c in (
        CycleKind.MONTHLY,
        CycleKind.MONTHLY_ANNIVERSARY,
        CycleKind.WEEKLY,
        CycleKind.SEMIMONTHLY,
        CycleKind.DAILY,
        CycleKind.DAYS_30,
    )
]
CUSTOMER_STATUSES = [s.value for s in CustomerStatus]
LIST_FILTERS = [*CUSTOMER_STATUSES, console_views.ARCHIVED]  # archived: hidden otherwise
Action = Callable[[UnitOfWork, datetime, dict[str, str]], object]


@router.get("/customers")
async def customers(
    request: Request,
    staff: Staff,
    q: str = "",
    status: str = "",
    after: int = 0,
    format: str = "",
) -> Response:
    search, state = q[:200], status if status in LIST_FILTERS else None
    scope = scope_of(staff)
    if format == "csv":
        rows = await work(
            request,
            lambda uow, _now: [
                (
                    r.id,
                    r.name,
                    r.status,
                    r.currency,
                    f"{r.balance.to_decimal():f}",
                    *tuple(r.services.get(s.value, 0) for s in ServiceState),
                )
                for r in console_views.iter_customers(
                    uow.session, scope=scope, search=search, status=state
                )
            ],
        )
        header = ["id", "name", "status", "currency", "balance"] + [s.value for s in ServiceState]
        return csv_response("customers.csv", header, rows)
    page = await work(
        request,
        lambda uow, _now: console_views.customer_page(
            uow.session, scope=scope, search=search, status=state, after=max(after, 0)
        ),
    )
    template = (
        "console/customer_rows.html"
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "results"
        else "console/customers.html"
    )
    context = {
        "page": page,
        "q": search,
        "status": status,
        "statuses": LIST_FILTERS,
        "bulk": None,
    }
    if template == "console/customers.html" and staff.may_write:  # the bulk actions' form
        context["bulk"] = await work(
            request,
            lambda uow, _now: {
                "reasons": profile_names(uow),
                "plans": console_catalog.plans(uow.session),
            },
        )
    return staff_page(request, staff, template, context)


def _choices(uow: UnitOfWork, staff: StaffPrincipal) -> dict[str, Any]:
    session = uow.session
    return {
        "classes": console_catalog.classes(session, by_name=True),
        "resellers": (
            console_catalog.resellers(session, by_name=True) if staff.role == "admin" else []
        ),
        "cycles": FORM_CYCLES,
        "balance_controls": [b.value for b in BalanceControl],
    }


@router.get("/customers/new")
async def new_customer_form(request: Request, staff: Staff) -> Response:
    require_write(staff)
    choices = await work(request, lambda uow, _now: _choices(uow, staff))
    settings = app_of(request).settings
    defaults = {
        "currency": settings.default_currency,
        "billing_timezone": settings.default_timezone,
        "locale": settings.default_locale,
    }
    return staff_page(
        request, staff, "console/customer_new.html", {**choices, "form": defaults, "error": None}
    )


@router.post("/customers")
async def create_customer(request: Request, staff: Staff) -> Response:
    require_write(staff)
    form = await form_of(request)
    fields = dict(form)
    custom = {
        k.removeprefix("custom_"): v for k, v in fields.items() if k.startswith("custom_") and v
    }

    def create(uow: UnitOfWork, now: datetime) -> int:
        reseller = form.get("reseller") or None
        if staff.role == "reseller":  # as the API: a reseller's customers are its own
            reseller_id = staff.reseller_id
        else:
            reseller_id = reseller_id_of(uow, reseller) if reseller else None
        spec = NewCustomer(
            name=form.get("name", ""),
            customer_class_id=customer_class_id_of(uow, form.get("customer_class", "")),
            currency=form.get("currency", ""),
            balance_control=form.get("balance_control", BalanceControl.PREPAID),
            billing_cycle=form.get("billing_cycle", CycleKind.MONTHLY),
            billing_timezone=form.get("billing_timezone", "UTC"),
            available_funds=form.get("available_funds") or None,
            funds_method=form.get("funds_method", "cash"),
            reseller_id=reseller_id,
            locale=form.get("locale", "en_US"),
            custom_data=custom,
            record=ContactRecord(
                emails=lines(form.get("emails")) or None,
                phones=lines(form.get("phones")) or None,
                billing_address=form.get("billing_address") or None,
                vat_id=form.get("vat_id") or None,
            ),
        )
        return add_customer(uow, spec=spec, now=now, actor=staff.actor).id

    try:
        customer_id = await work(request, create)
    except IspbillError as exc:
        choices = await work(request, lambda uow, _now: _choices(uow, staff))
        return staff_page(
            request,
            staff,
            "console/customer_new.html",
            {**choices, "form": form, "error": str(exc)},
            status=422,
        )
    return redirect(request, f"/console/customers/{customer_id}")


# -- what the customer's pages share ----------------------------------------------------------


def visible_customer(uow: UnitOfWork, staff: StaffPrincipal, customer_id: int) -> Any:
    """The customer, or a 404 for one that does not exist or this user may not see."""
    return check_visible(staff, console_catalog.customer(uow.session, customer_id))


def customer_context(
    uow: UnitOfWork, staff: StaffPrincipal, customer_id: int, now: datetime
) -> dict[str, Any]:
    """Everything the customer's page shows, its forms without a refusal."""
    detail = customer_detail(uow, visible_customer(uow, staff, customer_id))
    customer = detail.customer
    return {
        "customer": customer,
        "record": record_values(customer),
        "balance": detail.balance,
        "credit": detail.credit,
        "identities": detail.identities,
        "top_up": detail.top_up,
        "gateways": GATEWAY_NAMES,
        "nas_names": {n.id: n.name for n in list_nas(uow)},
        "postings": detail.postings,
        "services": detail.services,
        "plans": detail.plans,
        "invoices": list_invoices(uow, customer_id=customer.id, limit=100),
        "payments": detail.payments,
        "events": detail.events,
        "notifications": notifications.for_customer(uow, customer.id),
        "subject_of": notifications.subject,
        "portal": portal_account(uow, customer.id),
        # the "why" sentence of each service (collections: what put it there, what restores it)
        "why": {
            s.id: explain_service(uow, service_id=s.id, now=now).text
            for s in detail.services
            if s.state != ServiceState.ENDED
        },
        "reasons": profile_names(uow),
        # one-off charges and each service's add-ons (issue 17)
        "extra_charges": extras.list_extra_charges(uow, customer_id=customer.id),
        "addons": _addons_by_service(uow, customer.id),
        "discounts": discounting.list_discounts(uow, customer_id=customer.id),
        "scheduled": scheduled_changes.scheduled_of_customer(uow, customer.id),
        "pending_changes": customer_pending.pending_of_customer(uow, customer.id),
        "tax_profiles": console_catalog.tax_profiles(uow.session),
        "methods": [*HAND_METHODS, *settings_store.load(uow).payment_methods],
        "error": None,
        "error_form": None,
    }


def _addons_by_service(uow: UnitOfWork, customer_id: int) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for addon in extras.list_addons(uow, customer_id=customer_id):
        found.setdefault(addon.service_id, []).append(addon)
    return found


def _customer_page(
    request: Request, staff: StaffPrincipal, context: dict[str, Any], status: int = 200
) -> Response:
    timezone = context["customer"].billing_timezone
    return staff_page(request, staff, "console/customer.html", context, status, timezone=timezone)


async def act(
    request: Request,
    staff: StaffPrincipal,
    customer_id: int,
    form_name: str,
    action: Action,
) -> Response:
    """Run one write on a customer the user may see; on a refusal show the customer page
    with the message next to the form."""
    require_write(staff)
    form = await form_of(request)

    await work(request, lambda uow, _now: visible_customer(uow, staff, customer_id))
    try:
        await work(request, lambda uow, now: action(uow, now, form))
    except IspbillError as exc:
        context = await work(
            request, lambda uow, now: customer_context(uow, staff, customer_id, now)
        )
        context.update(error=str(exc), error_form=form_name)
        return _customer_page(request, staff, context, status=422)
    return redirect(request, f"/console/customers/{customer_id}#{form_name}")


# -- the customer's page and its actions -------------------------------------------------------


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, staff: Staff, customer_id: int) -> Response:
    context = await work(request, lambda uow, now: customer_context(uow, staff, customer_id, now))
    return _customer_page(request, staff, context)


@router.post("/customers/{customer_id}/charge")
async def charge(request: Request, staff: Staff, customer_id: int) -> Response:
    """Splynx "Charge & Invoice": charge what is due now and invoice it at once."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        found = console_catalog.customer(uow.session, customer_id)
        assert found is not None
        return charge_and_invoice(uow, customer=found, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "services", run)


@router.post("/customers/{customer_id}/portal-login")
async def portal_login(request: Request, staff: Staff, customer_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return set_portal_login(
            uow,
            customer_id=customer_id,
            email=form.get("email", ""),
            password=form.get("password") or None,
            now=now,
            actor=staff.actor,
        )

    return await act(request, staff, customer_id, "portal-login", run)


@router.post("/customer-changes/{change_id}/cancel")
async def cancel_pending_change(request: Request, staff: Staff, change_id: int) -> Response:
    """Cancel a timezone, cycle or invoicing-mode change planned from the next period."""

    def owner(uow: UnitOfWork, _now: datetime) -> int:
        try:
            return customer_pending.change_customer(uow, change_id)
        except NotFound:
            raise HTTPException(404, "no such pending change") from None

    customer_id = await work(request, owner)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return customer_pending.cancel_change(
            uow, change_id=change_id, now=now, actor=staff.actor, reason=form.get("reason", "")
        )

    return await act(request, staff, customer_id, "pending-changes", run)


@router.get("/customers/{customer_id}/preview")
async def customer_preview(
    request: Request, staff: Staff, customer_id: int, until: str = ""
) -> Response:
    def job(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
        customer = visible_customer(uow, staff, customer_id)
        day = parse_day(until, "until") if until else None
        instant = local_midnight(day, customer.billing_timezone) if day else now
        return {
            "customer": customer,
            "outcome": preview(uow, customer_id=customer.id, until=instant),
            "until": instant,
        }

    try:
        context = await work(request, job)
    except IspbillError as exc:
        raise HTTPException(422, str(exc)) from None
    return staff_page(request, staff, "console/preview.html", context)


# -- CSV exports of a customer's lists ----------------------------------------------------------


@router.get("/customers/{customer_id}/{what}.csv")
async def customer_csv(request: Request, staff: Staff, customer_id: int, what: str) -> Response:
    context = await work(request, lambda uow, now: customer_context(uow, staff, customer_id, now))
    name = f"customer-{customer_id}-{what}.csv"
    rows: list[tuple[object, ...]]
    header: list[str]
    if what == "services":
        ids = context["identities"]
        rows = [
            (
                s.id,
                s.plan.name,
                s.state,
                s.state_reason,
                s.active_from,
                s.active_to,
                s.billed_until,
                *_identity_cells(ids.get(s.id), context["nas_names"]),
            )
            for s in context["services"]
        ]
        header = ["id", "plan", "state", "reason", "active_from", "active_to", "billed_until"]
        header += ["username", "mac_address", "circuit_id", "static_ip", "nas"]
    elif what == "ledger":
        rows = [
            (t.id, t.effective_at.isoformat(), t.kind, t.memo, f"{m.to_decimal():f}", m.currency)
            for m, t in context["postings"]
        ]
        header = ["transaction", "effective_at", "kind", "memo", "amount", "currency"]
    elif what == "invoices":
        rows = [
            (
                i.number,
                i.kind,
                i.issue_date,
                i.due_date,
                i.status,
                i.gross_minor,
                i.paid_minor,
                i.currency,
            )
            for i in context["invoices"]
        ]
        header = [
            "number",
            "kind",
            "issue_date",
            "due_date",
            "status",
            "gross_minor",
            "paid_minor",
            "currency",
        ]
    elif what == "payments":
        rows = [
            (
                p.id,
                p.received_at.isoformat(),
                p.method,
                p.reference,
                p.amount_minor,
                p.currency,
                p.actor,
                p.reversed_by_id or "",
            )
            for p in context["payments"]
        ]
        header = ["id", "received_at", "method", "reference", "amount_minor", "currency", "actor"]
        header.append("reversed_by_transaction")
    elif what == "events":
        rows = [
            (e.id, e.occurred_at.isoformat(), e.actor, e.kind, e.reason, e.figures)
            for e in context["events"]
        ]
        header = ["id", "occurred_at", "actor", "kind", "reason", "figures"]
    else:
        raise HTTPException(404, "no such list")
    return csv_response(name, header, rows)


def _identity_cells(row: Any, nas_names: dict[int, str]) -> tuple[str, ...]:
    """A service's network login as CSV cells (empty cells when it has none)."""
    if row is None:
        return ("", "", "", "", "")
    nas = nas_names.get(row.nas_id, "") if row.nas_id else ""
    cells = (row.username, row.mac_address, row.circuit_id, row.static_ip, nas)
    return tuple(c or "" for c in cells)
