"""The operator console (``/console``): sign-in, dashboard, customers and the actions on them.

Each write route checks the form's CSRF token, the user's role (``may_write``; a reseller's
user acts only on its own customers, anyone else's is a 404) and calls one use case; a refusal
is shown next to the form, with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.invoice_store import open_invoices, unallocated_credit
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    NetworkIdentity,
    Payment,
    Plan,
    Reseller,
    Service,
    TaxProfileRow,
    TopUpRule,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.payments.gateway import GATEWAY_NAMES
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.dates import check_date
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.ledger import AccountRef
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.entrypoints.web import charts
from ispbill.entrypoints.web.common import (
    app_of,
    form_of,
    pick_language,
    redirect,
    render,
    set_cookie,
    translations,
)
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import (
    STAFF_COOKIE,
    StaffPrincipal,
    check_visible,
    current_staff,
    require_admin,
    require_global,
    require_staff,
    require_write,
)
from ispbill.use_cases.admin.api_tokens import ROLES as TOKEN_ROLES
from ispbill.use_cases.admin.api_tokens import create_token, list_tokens, revoke_token
from ispbill.use_cases.admin.web_auth import (
    SignInRefused,
    end_session,
    set_portal_login,
    sign_in_staff,
    start_session,
)
from ispbill.use_cases.billing.invoice_documents import list_invoices, printable
from ispbill.use_cases.billing.plan_changes import change_plan, terminate_service
from ispbill.use_cases.billing.reevaluation import charge_and_invoice, preview
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.offerings import (
    NewClass,
    NewPlan,
    add_class,
    add_plan,
    add_reseller,
    add_tax_profile,
)
from ispbill.use_cases.collections import collection_policy, info_pages
from ispbill.use_cases.collections.non_payers import run_collections
from ispbill.use_cases.collections.suspensions import (
    SuspendRequest,
    lift_service,
    profile_names,
    promise_to_pay,
    suspend_service,
)
from ispbill.use_cases.network.identities import (
    NewIdentity,
    NewNas,
    add_nas,
    list_nas,
    set_identity,
)
from ispbill.use_cases.notifications import mail_outbox as notifications
from ispbill.use_cases.payments.corrections import refund, reverse_payment
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.payments.top_ups import (
    TopUpRuleSpec,
    delete_rule,
    disable_rule,
    set_rule,
)
from ispbill.use_cases.queries import dashboard as console_views
from ispbill.use_cases.service_lifecycle.explain import explain_service
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service
from ispbill.use_cases.service_lifecycle.pauses import reactivate_service, schedule_pause

router = APIRouter(prefix="/console", include_in_schema=False)
Staff = Annotated[StaffPrincipal, Depends(require_staff)]
T = TypeVar("T")
POSTINGS_SHOWN = 50


def _language(request: Request, staff: StaffPrincipal | None) -> str:
    return pick_language(request, staff.locale if staff else None)


def _page(
    request: Request,
    staff: StaffPrincipal | None,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    return render(
        request,
        template,
        {"staff": staff, "section": "console", **context},
        language=_language(request, staff),
        status=status,
    )


async def _work(request: Request, job: Callable[[UnitOfWork, datetime], T]) -> T:
    app = app_of(request)

    def run() -> T:
        with app.uow() as uow:
            return job(uow, app.clock.now())

    return await run_in_threadpool(run)


def _scope(staff: StaffPrincipal) -> console_views.Scope:
    return console_views.Scope(staff.reseller_id if staff.role == "reseller" else None)


def _gettext(request: Request, staff: StaffPrincipal | None) -> Callable[[str], str]:
    return translations(_language(request, staff)).gettext


def _day(text: str, field: str) -> date | None:
    if not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, "must be a date like 2026-12-01") from None
    return check_date(field, day)


# -- signing in -----------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _page(request, None, "console/login.html", {"error": None, "username": ""})


@router.post("/login")
async def login(request: Request) -> Response:
    form = await form_of(request)
    app = app_of(request)
    source = request.client.host if request.client else None
    from ispbill.entrypoints.web.session import policy

    rules = policy(request)

    def sign_in(uow: UnitOfWork, now: datetime) -> str:
        staff = sign_in_staff(
            uow,
            username=form.get("username", ""),
            password=form.get("password", ""),
            code=form.get("code", ""),
            source=source,
            now=now,
        )
        return start_session(uow, staff_id=staff.id, now=now, policy=rules)

    try:
        secret = await _work(request, sign_in)
    except SignInRefused as exc:
        context = {"error": _gettext(request, None)(str(exc)), "username": form.get("username")}
        return _page(request, None, "console/login.html", context, status=401)
    response = redirect(request, "/console")
    set_cookie(
        response, request, STAFF_COOKIE, secret, max_age=app.settings.session_max_hours * 3600
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await form_of(request)
    secret = request.cookies.get(STAFF_COOKIE, "")
    await _work(request, lambda uow, now: end_session(uow, secret=secret, now=now))
    response = redirect(request, "/console/login")
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response


# -- dashboard ------------------------------------------------------------------------------------


@router.get("")
async def dashboard(request: Request, staff: Staff) -> Response:
    board = await _work(
        request, lambda uow, now: console_views.dashboard(uow.session, scope=_scope(staff), now=now)
    )
    _ = _gettext(request, staff)
    lang = _language(request, staff)
    from ispbill.entrypoints.web.common import Formats

    fmt = Formats(lang)
    labels = [fmt.month(k) for k in board.months]
    money_charts = []
    for title, table in ((_("Revenue (charges)"), board.revenue), (_("Payments"), board.payments)):
        for currency, by_month in sorted(table.items()):
            values = [by_month.get(k, 0) for k in board.months]
            series = [charts.Series(currency, values)]
            money_charts.append(
                {
                    "title": f"{title}, {currency}",
                    "svg": Markup(charts.bar_chart(labels, series, f"{title} {currency}")),
                    "rows": [
                        (label, fmt.minor(v, currency))
                        for label, v in zip(labels, values, strict=True)
                    ],
                }
            )
    shown_states = ["active", "suspended", "deactivated", "paused"]
    state_series = [charts.Series(_(s), board.states.get(s, [])) for s in shown_states]
    states_svg = Markup(charts.line_chart(labels, state_series, _("Services by state")))
    return _page(
        request,
        staff,
        "console/dashboard.html",
        {
            "board": board,
            "labels": labels,
            "money_charts": money_charts,
            "states_svg": states_svg,
            "shown_states": shown_states,
        },
    )


# -- customers ------------------------------------------------------------------------------------


@router.get("/customers")
async def customers(
    request: Request,
    staff: Staff,
    q: str = "",
    status: str = "",
    after: int = 0,
    format: str = "",
) -> Response:
    search, state = q[:200], status if status in ("active", "inactive") else None
    scope = _scope(staff)
    if format == "csv":
        rows = await _work(
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
    page = await _work(
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
    return _page(request, staff, template, {"page": page, "q": search, "status": status})


def _choices(uow: UnitOfWork, staff: StaffPrincipal) -> dict[str, Any]:
    session = uow.session
    return {
        "classes": list(session.scalars(select(CustomerClass).order_by(CustomerClass.name))),
        "resellers": (
            list(session.scalars(select(Reseller).order_by(Reseller.name)))
            if staff.role == "admin"
            else []
        ),
    }


@router.get("/customers/new")
async def new_customer_form(request: Request, staff: Staff) -> Response:
    require_write(staff)
    choices = await _work(request, lambda uow, _now: _choices(uow, staff))
    settings = app_of(request).settings
    defaults = {
        "currency": settings.default_currency,
        "billing_timezone": settings.default_timezone,
        "locale": settings.default_locale,
    }
    return _page(
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
    spec = NewCustomer(
        name=form.get("name", ""),
        customer_class=form.get("customer_class", ""),
        currency=form.get("currency", ""),
        balance_control=form.get("balance_control", "prepaid"),
        billing_cycle=form.get("billing_cycle", "monthly"),
        billing_timezone=form.get("billing_timezone", "UTC"),
        available_funds=form.get("available_funds") or None,
        funds_method=form.get("funds_method", "cash"),
        reseller=form.get("reseller") or None,
        locale=form.get("locale", "en_US"),
        custom_data=custom,
    )

    def create(uow: UnitOfWork, now: datetime) -> int:
        final = spec
        if staff.role == "reseller":  # as the API: a reseller's customers are its own
            final = replace(spec, reseller=str(staff.reseller_id))
        return add_customer(uow, spec=final, now=now, actor=staff.actor).id

    try:
        customer_id = await _work(request, create)
    except IspbillError as exc:
        choices = await _work(request, lambda uow, _now: _choices(uow, staff))
        return _page(
            request,
            staff,
            "console/customer_new.html",
            {**choices, "form": form, "error": str(exc)},
            status=422,
        )
    return redirect(request, f"/console/customers/{customer_id}")


def _visible(uow: UnitOfWork, staff: StaffPrincipal, customer_id: int) -> Customer:
    return check_visible(staff, uow.session.get(Customer, customer_id))


def _customer_context(
    uow: UnitOfWork, staff: StaffPrincipal, customer_id: int, now: datetime
) -> dict[str, Any]:
    session = uow.session
    customer = _visible(uow, staff, customer_id)
    wallet = AccountRef.wallet(customer.id, customer.currency)
    postings = session.execute(
        select(LedgerPosting, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.code == wallet.code)
        .order_by(LedgerTransaction.effective_at.desc(), LedgerPosting.id.desc())
        .limit(POSTINGS_SHOWN)
    ).all()
    services = list(
        session.scalars(
            select(Service).where(Service.customer_id == customer.id).order_by(Service.id)
        )
    )
    plans = list(
        session.scalars(
            select(Plan)
            .where(Plan.active.is_(True), Plan.currency == customer.currency)
            .order_by(Plan.name)
        )
    )
    payments = list(
        session.scalars(
            select(Payment)
            .where(Payment.customer_id == customer.id)
            .order_by(Payment.received_at.desc(), Payment.id.desc())
            .limit(100)
        )
    )
    from ispbill.use_cases.admin.web_auth import portal_account

    identities = session.scalars(
        select(NetworkIdentity).where(NetworkIdentity.service_id.in_([s.id for s in services]))
    )
    methods = ["cash", "bank", "card", *settings_store.load(uow).payment_methods]
    return {
        "customer": customer,
        "balance": ledger.wallet_balance(session, customer.id, customer.currency),
        # what a refund may pay back: money that pays an open invoice is not credit
        "credit": unallocated_credit(session, customer, open_invoices(session, customer.id)),
        "identities": {row.service_id: row for row in identities},
        "top_up": session.scalar(select(TopUpRule).where(TopUpRule.customer_id == customer.id)),
        "gateways": GATEWAY_NAMES,
        "nas_names": {n.id: n.name for n in list_nas(uow)},
        "postings": [(Money(p.amount_minor, p.currency), t) for p, t in postings],
        "services": services,
        "plans": plans,
        "invoices": list_invoices(uow, customer=str(customer.id), limit=100),
        "payments": payments,
        "events": events.for_customer(uow, customer.id, limit=100),
        "notifications": notifications.for_customer(uow, customer.id),
        "subject_of": notifications.subject,
        "portal": portal_account(uow, customer.id),
        # the "why" sentence of each service (collections: what put it there, what restores it)
        "why": {
            s.id: explain_service(uow, service_ref=s.id, now=now).text
            for s in services
            if s.state != ServiceState.ENDED.value
        },
        "reasons": profile_names(uow),
        "methods": methods,
        "error": None,
        "error_form": None,
    }


@router.get("/customers/{customer_id}")
async def customer_page(request: Request, staff: Staff, customer_id: int) -> Response:
    context = await _work(request, lambda uow, now: _customer_context(uow, staff, customer_id, now))
    timezone = context["customer"].billing_timezone
    return render(
        request,
        "console/customer.html",
        {"staff": staff, "section": "console", **context},
        language=_language(request, staff),
        timezone=timezone,
    )


async def _act(
    request: Request,
    staff: StaffPrincipal,
    customer_id: int,
    form_name: str,
    action: Callable[[UnitOfWork, datetime, dict[str, str]], object],
) -> Response:
    """Run one write on a customer the user may see; on a refusal show the customer page
    with the message next to the form."""
    require_write(staff)
    form = await form_of(request)

    await _work(request, lambda uow, _now: _visible(uow, staff, customer_id))
    try:
        await _work(request, lambda uow, now: action(uow, now, form))
    except IspbillError as exc:
        context = await _work(
            request, lambda uow, now: _customer_context(uow, staff, customer_id, now)
        )
        context.update(error=str(exc), error_form=form_name)
        return render(
            request,
            "console/customer.html",
            {"staff": staff, "section": "console", **context},
            language=_language(request, staff),
            timezone=context["customer"].billing_timezone,
            status=422,
        )
    return redirect(request, f"/console/customers/{customer_id}#{form_name}")


@router.post("/customers/{customer_id}/services")
async def create_service(request: Request, staff: Staff, customer_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewService(
            customer=str(customer_id),
            plan=form.get("plan", ""),
            active_from=_day(form.get("active_from", ""), "active_from"),
            active_to=_day(form.get("active_to", ""), "active_to"),
        )
        return add_service(uow, spec=spec, now=now, actor=staff.actor)

    return await _act(request, staff, customer_id, "new-service", act)


@router.post("/customers/{customer_id}/payments")
async def create_payment(request: Request, staff: Staff, customer_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewPayment(
            customer=str(customer_id),
            amount=form.get("amount", ""),
            method=form.get("method", "cash"),
            reference=form.get("reference") or None,
            idempotency_key=form.get("idempotency_key") or None,
        )
        return record_payment(uow, spec=spec, now=now, actor=staff.actor)

    return await _act(request, staff, customer_id, "payment", act)


@router.post("/customers/{customer_id}/charge")
async def charge(request: Request, staff: Staff, customer_id: int) -> Response:
    """Splynx "Charge & Invoice": charge what is due now and invoice it at once."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        found = uow.session.get(Customer, customer_id)
        assert found is not None
        return charge_and_invoice(uow, customer=found, now=now, actor=staff.actor)

    return await _act(request, staff, customer_id, "services", act)


@router.post("/customers/{customer_id}/portal-login")
async def portal_login(request: Request, staff: Staff, customer_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return set_portal_login(
            uow,
            customer=str(customer_id),
            email=form.get("email", ""),
            password=form.get("password") or None,
            now=now,
            actor=staff.actor,
        )

    return await _act(request, staff, customer_id, "portal-login", act)


def _service_of(uow: UnitOfWork, staff: StaffPrincipal, service_id: int) -> Service:
    service = uow.session.get(Service, service_id)
    if service is None:
        raise HTTPException(404, "no such service")
    check_visible(staff, uow.session.get(Customer, service.customer_id))
    return service


async def _service_act(
    request: Request,
    staff: StaffPrincipal,
    service_id: int,
    action: Callable[[UnitOfWork, datetime, dict[str, str]], object],
    form_name: str = "service",
) -> Response:
    customer_id = await _work(
        request, lambda uow, _now: _service_of(uow, staff, service_id).customer_id
    )
    return await _act(request, staff, customer_id, f"{form_name}-{service_id}", action)


@router.post("/services/{service_id}/reactivate")
async def reactivate(request: Request, staff: Staff, service_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return reactivate_service(
            uow,
            service_ref=service_id,
            active_to=_day(form.get("active_to", ""), "active_to"),
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/change-plan")
async def change_service_plan(request: Request, staff: Staff, service_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return change_plan(
            uow,
            service_ref=service_id,
            new_plan_ref=form.get("plan", ""),
            effective=_day(form.get("effective", ""), "effective"),
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/terminate")
async def terminate(request: Request, staff: Staff, service_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return terminate_service(
            uow,
            service_ref=service_id,
            effective=_day(form.get("effective", ""), "effective"),
            reason=form.get("reason") or None,
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/suspend")
async def suspend(request: Request, staff: Staff, service_id: int) -> Response:
    """ISPadmin: suspend now, or plan a FROM-TO window (yearly, with or without invoicing)."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = SuspendRequest(
            service=service_id,
            reason=form.get("reason", "not_set"),
            suspend_invoicing=form.get("suspend_invoicing") == "1",
            starts_on=_day(form.get("starts_on", ""), "starts_on"),
            ends_on=_day(form.get("ends_on", ""), "ends_on"),
            repeat_yearly=form.get("repeat_yearly") == "1",
            note=form.get("note", ""),
        )
        return suspend_service(uow, spec=spec, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/lift")
async def lift(request: Request, staff: Staff, service_id: int) -> Response:
    """A yearly window comes back next year unless "end the repetition" is ticked."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return lift_service(
            uow,
            service_ref=service_id,
            now=now,
            actor=staff.actor,
            note=form.get("note", ""),
            end_repetition=form.get("end_repetition") == "1",
        )

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/promise")
async def promise(request: Request, staff: Staff, service_id: int) -> Response:
    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        text = form.get("days", "").strip()
        days = int(text) if text.isdigit() else None
        return promise_to_pay(uow, service_ref=service_id, days=days, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, act)


@router.post("/services/{service_id}/identity")
async def service_identity(request: Request, staff: Staff, service_id: int) -> Response:
    """How the service logs in on the network; an empty password keeps the stored one."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewIdentity(
            service=str(service_id),
            username=form.get("username", "").strip() or None,
            password=form.get("password") or None,
            mac_address=form.get("mac_address", "").strip() or None,
            circuit_id=form.get("circuit_id", "").strip() or None,
            static_ip=form.get("static_ip", "").strip() or None,
            nas=form.get("nas", "").strip() or None,
            pap_only=form.get("pap_only") == "1",
            keep_password=True,
        )
        return set_identity(uow, spec=spec, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, act, form_name="identity")


@router.post("/services/{service_id}/active-to")
async def active_to(request: Request, staff: Staff, service_id: int) -> Response:
    """UISP "active to": the service pauses after this day; an empty day clears it."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        day = _day(form.get("active_to", ""), "active_to")
        return schedule_pause(
            uow, service_ref=service_id, active_to=day, now=now, actor=staff.actor
        )

    return await _service_act(request, staff, service_id, act)


# -- automatic top-up of a customer's wallet ------------------------------------------------------


@router.post("/customers/{customer_id}/top-up")
async def set_top_up(request: Request, staff: Staff, customer_id: int) -> Response:
    """Create or replace the wallet's rule (a saved payment method charged at the gateway
    when the balance falls below the threshold)."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = TopUpRuleSpec(
            customer=str(customer_id),
            threshold=form.get("threshold", ""),
            amount=form.get("amount", ""),
            method=form.get("method", ""),
            gateway=form.get("gateway", ""),
            gateway_customer=form.get("gateway_customer", "").strip() or None,
            enabled=form.get("enabled") == "1",
        )
        return set_rule(uow, spec=spec, now=now, actor=staff.actor)

    return await _act(request, staff, customer_id, "top-up", act)


@router.post("/customers/{customer_id}/top-up/{change}")
async def change_top_up(request: Request, staff: Staff, customer_id: int, change: str) -> Response:
    """Disable the rule, or delete one that never requested a top-up (the use case refuses
    deleting one with history: it is disabled instead, to keep the attempts' trail)."""
    if change not in ("disable", "delete"):
        raise HTTPException(404, "no such change")
    use_case = disable_rule if change == "disable" else delete_rule

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return use_case(uow, customer=str(customer_id), now=now, actor=staff.actor)

    return await _act(request, staff, customer_id, "top-up", act)


# -- payment corrections: reversal and refund -----------------------------------------------------


@router.post("/payments/{payment_id}/reverse")
async def reverse(request: Request, staff: Staff, payment_id: int) -> Response:
    """Undo a payment (bounced, charged back, booked to the wrong customer) with a linked
    reversing transaction; the reason is required and kept on the event."""

    def customer_of(uow: UnitOfWork, _now: datetime) -> int:
        payment = uow.session.get(Payment, payment_id) if 0 < payment_id <= MAX_ID else None
        if payment is None:
            raise HTTPException(404, "no such payment")
        return _visible(uow, staff, payment.customer_id).id

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return reverse_payment(
            uow, payment_ref=payment_id, reason=form.get("reason", ""), now=now, actor=staff.actor
        )

    customer_id = await _work(request, customer_of)
    return await _act(request, staff, customer_id, f"payment-{payment_id}", act)


@router.post("/customers/{customer_id}/refunds")
async def create_refund(request: Request, staff: Staff, customer_id: int) -> Response:
    """Pay unallocated credit back; once per (customer, method, reference), optionally of one
    of this customer's payments."""

    def act(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        paid = form.get("payment", "").strip()
        if paid:
            known = paid.isascii() and paid.isdigit() and 0 < int(paid) <= MAX_ID
            found = uow.session.get(Payment, int(paid)) if known else None
            if found is None or found.customer_id != customer_id:
                raise ValidationError("payment", "must be one of this customer's payments")
        return refund(
            uow,
            customer=str(customer_id),
            amount=form.get("amount", ""),
            method=form.get("method", ""),
            reference=form.get("reference", ""),
            now=now,
            actor=staff.actor,
            payment=paid or None,
        )

    return await _act(request, staff, customer_id, "refund", act)


# -- collections: policy and walled-garden info pages ---------------------------------------------


def _policy_context(uow: UnitOfWork) -> dict[str, Any]:
    fields = collection_policy.CollectionSettings.model_fields
    current = collection_policy.load(uow).model_dump(mode="json")
    return {
        "policy": [(key, current.get(key), fields[key].description or "") for key in fields],
        "pages": info_pages.list_pages(uow),
        "error": None,
    }


@router.get("/collections")
async def collections_page(request: Request, staff: Staff) -> Response:
    context = await _work(request, lambda uow, _now: _policy_context(uow))
    return _page(request, staff, "console/collections.html", context)


@router.post("/collections/policy")
async def set_policy(request: Request, staff: Staff) -> Response:
    """Change the policy keys that differ; customers are reviewed at once (turning it off
    lifts automatic non-payer suspensions)."""
    require_admin(staff)
    form = await form_of(request)

    def act(uow: UnitOfWork, now: datetime) -> None:
        current = collection_policy.load(uow).model_dump(mode="json")
        changes: dict[str, str | None] = {}
        for key in collection_policy.CollectionSettings.model_fields:
            if key not in form:
                continue
            old = current.get(key)
            old_text = (
                "" if old is None else str(old).lower() if isinstance(old, bool) else str(old)
            )
            new = form[key].strip()
            if new != old_text:
                changes[key] = new or None
        if changes:
            uow.session.rollback()
            collection_policy.set_values(
                uow, changes=changes, customer_class=None, now=now, actor=staff.actor
            )

    try:
        await _work(request, act)
    except IspbillError as exc:
        context = await _work(request, lambda uow, _now: _policy_context(uow))
        context["error"] = str(exc)
        return _page(request, staff, "console/collections.html", context, status=422)
    app = app_of(request)
    await run_in_threadpool(
        lambda: run_collections(app.uow, now=app.clock.now(), actor=staff.actor)
    )
    return redirect(request, "/console/collections")


@router.post("/collections/pages/{reason}")
async def edit_info_page(request: Request, staff: Staff, reason: str) -> Response:
    require_admin(staff)
    form = await form_of(request)
    try:
        await _work(
            request,
            lambda uow, now: info_pages.edit_page(
                uow,
                reason=reason,
                title=form.get("title", ""),
                body=form.get("body", ""),
                now=now,
                actor=staff.actor,
            ),
        )
    except IspbillError as exc:
        context = await _work(request, lambda uow, _now: _policy_context(uow))
        context["error"] = str(exc)
        return _page(request, staff, "console/collections.html", context, status=422)
    return redirect(request, f"/console/collections#page-{reason}")


@router.get("/customers/{customer_id}/preview")
async def customer_preview(
    request: Request, staff: Staff, customer_id: int, until: str = ""
) -> Response:
    def job(uow: UnitOfWork, now: datetime) -> dict[str, Any]:
        customer = _visible(uow, staff, customer_id)
        day = _day(until, "until") if until else None
        from ispbill.domain.calendar import local_midnight

        instant = local_midnight(day, customer.billing_timezone) if day else now
        return {
            "customer": customer,
            "outcome": preview(uow, customer_id=customer.id, until=instant),
            "until": instant,
        }

    try:
        context = await _work(request, job)
    except IspbillError as exc:
        raise HTTPException(422, str(exc)) from None
    return _page(request, staff, "console/preview.html", context)


# -- CSV exports of a customer's lists ----------------------------------------------------------


@router.get("/customers/{customer_id}/{what}.csv")
async def customer_csv(request: Request, staff: Staff, customer_id: int, what: str) -> Response:
    context = await _work(request, lambda uow, now: _customer_context(uow, staff, customer_id, now))
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


def _identity_cells(row: NetworkIdentity | None, nas_names: dict[int, str]) -> tuple[str, ...]:
    if row is None:
        return ("", "", "", "", "")
    nas = nas_names.get(row.nas_id, "") if row.nas_id else ""
    cells = (row.username, row.mac_address, row.circuit_id, row.static_ip, nas)
    return tuple(c or "" for c in cells)


@router.get("/invoices/{number}.pdf")
async def invoice_pdf(request: Request, staff: Staff, number: str) -> Response:
    def job(uow: UnitOfWork, _now: datetime) -> bytes:
        document = printable(uow, number)
        from ispbill.use_cases.billing.invoice_documents import get_invoice

        check_visible(staff, get_invoice(uow, number).customer)
        return render_pdf(document.view, document.template)

    try:
        pdf = await _work(request, job)
    except IspbillError:
        raise HTTPException(404, "no such invoice") from None
    return Response(pdf, media_type="application/pdf")


# -- catalogue: plans, classes, refill cards ----------------------------------------------------


@router.get("/plans")
async def plans(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await _work(
        request, lambda uow, _now: list(uow.session.scalars(select(Plan).order_by(Plan.id)))
    )
    if format == "csv":
        return csv_response(
            "plans.csv",
            [
                "id",
                "name",
                "price_minor",
                "currency",
                "cycle",
                "download_kbps",
                "upload_kbps",
                "active",
            ],
            [
                (
                    p.id,
                    p.name,
                    p.price_minor,
                    p.currency,
                    p.cycle_kind,
                    p.download_kbps,
                    p.upload_kbps,
                    p.active,
                )
                for p in rows
            ],
        )
    return _page(request, staff, "console/plans.html", {"plans": rows, "error": None, "form": {}})


@router.post("/plans")
async def create_plan(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    spec = NewPlan(
        name=form.get("name", ""),
        price=form.get("price", ""),
        currency=form.get("currency", ""),
        download=form.get("download", ""),
        upload=form.get("upload", ""),
        cycle=form.get("cycle") or "customer",
    )
    try:
        await _work(request, lambda uow, now: add_plan(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await _work(
            request, lambda uow, _now: list(uow.session.scalars(select(Plan).order_by(Plan.id)))
        )
        return _page(
            request,
            staff,
            "console/plans.html",
            {"plans": rows, "error": str(exc), "form": form},
            status=422,
        )
    return redirect(request, "/console/plans")


@router.get("/classes")
async def classes(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await _work(
        request,
        lambda uow, _now: list(
            uow.session.scalars(select(CustomerClass).order_by(CustomerClass.id))
        ),
    )
    if format == "csv":
        return csv_response(
            "classes.csv",
            ["id", "name", "grace_days", "invoice_template", "custom_fields"],
            [
                (
                    c.id,
                    c.name,
                    c.grace_days,
                    c.invoice_template,
                    [f.get("name") for f in c.custom_fields],
                )
                for c in rows
            ],
        )
    return _page(
        request, staff, "console/classes.html", {"classes": rows, "error": None, "form": {}}
    )


@router.post("/classes")
async def create_class(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    fields = [f.strip() for f in form.get("custom_fields", "").split(",") if f.strip()]
    try:
        grace = int(form.get("grace_days") or 0)
    except ValueError:
        grace = -1
    spec = NewClass(name=form.get("name", ""), grace_days=grace, custom_fields=fields)
    try:
        await _work(request, lambda uow, now: add_class(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await _work(
            request,
            lambda uow, _now: list(
                uow.session.scalars(select(CustomerClass).order_by(CustomerClass.id))
            ),
        )
        return _page(
            request,
            staff,
            "console/classes.html",
            {"classes": rows, "error": str(exc), "form": form},
            status=422,
        )
    return redirect(request, "/console/classes")


# -- network access servers (RADIUS) ------------------------------------------------------------


@router.get("/nas")
async def nas_list(request: Request, staff: Staff, format: str = "") -> Response:
    """The routers that ask ispbill's RADIUS; their shared secrets are never shown.
    Operator-wide, as the API's ``GET /nas``: never a reseller's user."""
    require_global(staff)
    rows = await _work(request, lambda uow, _now: list_nas(uow))
    if format == "csv":
        return csv_response(
            "nas.csv",
            ["id", "name", "address", "vendor", "coa_port", "require_message_authenticator"],
            [
                (n.id, n.name, n.address, n.vendor, n.coa_port, n.require_message_authenticator)
                for n in rows
            ],
        )
    return _page(request, staff, "console/nas.html", {"nas": rows, "error": None, "form": {}})


@router.post("/nas")
async def nas_create(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    port = form.get("coa_port", "3799").strip()
    spec = NewNas(
        name=form.get("name", ""),
        address=form.get("address", ""),
        secret=form.get("secret", ""),
        coa_port=int(port) if port.isdigit() else -1,
        vendor=form.get("vendor", "mikrotik"),
        require_message_authenticator=form.get("require_message_authenticator") == "1",
    )
    try:
        await _work(request, lambda uow, now: add_nas(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await _work(request, lambda uow, _now: list_nas(uow))
        shown = {k: v for k, v in form.items() if k != "secret"}
        context = {"nas": rows, "error": str(exc), "form": shown}
        return _page(request, staff, "console/nas.html", context, status=422)
    return redirect(request, "/console/nas")


# -- operator settings and the tick --------------------------------------------------------------


def _settings_context(uow: UnitOfWork) -> dict[str, Any]:
    fields = settings_store.OperatorSettings.model_fields
    current = settings_store.load(uow).model_dump(mode="json")
    rows = []
    for key, info in fields.items():
        value = current.get(key)
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, bool):
            value = str(value).lower()
        rows.append((key, "" if value is None else str(value), info.description or ""))
    return {"settings": rows, "error": None, "report": None}


@router.get("/settings")
async def settings_page(request: Request, staff: Staff) -> Response:
    """Operator-wide, as the API's ``GET /settings``: never a reseller's user."""
    require_global(staff)
    context = await _work(request, lambda uow, _now: _settings_context(uow))
    return _page(request, staff, "console/settings.html", context)


@router.post("/settings")
async def save_settings(request: Request, staff: Staff) -> Response:
    """Each changed setting through ``settings.set_value`` (one event each)."""
    require_admin(staff)
    form = await form_of(request)
    current = await _work(request, lambda uow, _now: _settings_context(uow)["settings"])
    changed = [(key, form[key]) for key, value, _ in current if key in form and form[key] != value]

    def save(uow: UnitOfWork, now: datetime) -> None:
        # every change is checked before the first is stored: a refusal writes nothing
        merged = settings_store.load(uow).model_dump()
        for key, raw in changed:
            text = raw.strip()
            merged[key] = None if text.lower() in ("", "none", "null") else text
            try:
                settings_store.OperatorSettings.model_validate(merged)
            except PydanticValidationError as exc:
                raise ValidationError(key, exc.errors()[0]["msg"]) from None
        for key, raw in changed:
            settings_store.set_value(uow, key=key, raw=raw, now=now, actor=staff.actor)

    try:
        await _work(request, save)
    except IspbillError as exc:
        context = await _work(request, lambda uow, _now: _settings_context(uow))
        context["error"] = str(exc)
        return _page(request, staff, "console/settings.html", context, status=422)
    return redirect(request, "/console/settings")


@router.post("/tick")
async def run_tick(request: Request, staff: Staff) -> Response:
    """Run the engine now, as ``ispbill run`` and ``POST /api/v1/ticks`` do (admin only)."""
    require_admin(staff)
    await form_of(request)
    app = app_of(request)
    report = await run_in_threadpool(
        lambda: tick(app.uow_factory, now=app.clock.now(), actor=staff.actor, gateways=app.gateways)
    )
    context = await _work(request, lambda uow, _now: _settings_context(uow))
    context["report"] = report
    return _page(request, staff, "console/settings.html", context)


@router.post("/language")
async def language(request: Request) -> Response:
    form = await form_of(request)
    from ispbill.entrypoints.web.common import LANG_COOKIE, LANGUAGES

    chosen = form.get("lang", "en")
    target = form.get("next", "/console")
    if not target.startswith("/") or target.startswith("//"):
        target = "/console"
    response = redirect(request, target)
    if chosen in LANGUAGES:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=365 * 86400)
    return response


__all__ = ["current_staff", "router"]


# -- tax profiles, resellers and API tokens ------------------------------------------------------


def _tax_rows(uow: UnitOfWork) -> list[TaxProfileRow]:
    return list(uow.session.scalars(select(TaxProfileRow).order_by(TaxProfileRow.id)))


@router.get("/taxes")
async def tax_profiles(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await _work(request, lambda uow, _now: _tax_rows(uow))
    if format == "csv":
        return csv_response(
            "tax_profiles.csv",
            ["id", "name", "rate_bp", "inclusive"],
            [(t.id, t.name, t.rate_bp, t.inclusive) for t in rows],
        )
    return _page(request, staff, "console/taxes.html", {"taxes": rows, "error": None, "form": {}})


@router.post("/taxes")
async def create_tax_profile(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)

    def create(uow: UnitOfWork, now: datetime) -> object:
        return add_tax_profile(
            uow,
            name=form.get("name", ""),
            rate=form.get("rate", ""),
            inclusive=form.get("inclusive") == "1",
            now=now,
            actor=staff.actor,
        )

    try:
        await _work(request, create)
    except IspbillError as exc:
        rows = await _work(request, lambda uow, _now: _tax_rows(uow))
        context = {"taxes": rows, "error": str(exc), "form": form}
        return _page(request, staff, "console/taxes.html", context, status=422)
    return redirect(request, "/console/taxes")


def _reseller_rows(uow: UnitOfWork, staff: StaffPrincipal) -> list[Reseller]:
    """A reseller's user sees only its own reseller, never the others' names."""
    query = select(Reseller).order_by(Reseller.id)
    if staff.role == "reseller":
        query = query.where(Reseller.id == staff.reseller_id)
    return list(uow.session.scalars(query))


@router.get("/resellers")
async def resellers(request: Request, staff: Staff, format: str = "") -> Response:
    rows = await _work(request, lambda uow, _now: _reseller_rows(uow, staff))
    if format == "csv":
        return csv_response(
            "resellers.csv",
            ["id", "name", "created_at"],
            [(r.id, r.name, r.created_at.isoformat()) for r in rows],
        )
    context: dict[str, Any] = {"resellers": rows, "error": None, "form": {}}
    return _page(request, staff, "console/resellers.html", context)


@router.post("/resellers")
async def create_reseller(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    name = form.get("name", "")
    try:
        await _work(
            request, lambda uow, now: add_reseller(uow, name=name, now=now, actor=staff.actor)
        )
    except IspbillError as exc:
        rows = await _work(request, lambda uow, _now: _reseller_rows(uow, staff))
        context = {"resellers": rows, "error": str(exc), "form": form}
        return _page(request, staff, "console/resellers.html", context, status=422)
    return redirect(request, "/console/resellers")


def _tokens_context(uow: UnitOfWork) -> dict[str, Any]:
    names = {r.id: r.name for r in uow.session.scalars(select(Reseller))}
    operator = [t for t in list_tokens(uow) if t.role in TOKEN_ROLES]  # not portal sessions
    return {"tokens": operator, "reseller_names": names, "roles": TOKEN_ROLES}


@router.get("/tokens")
async def tokens(request: Request, staff: Staff, format: str = "") -> Response:
    """API tokens (admin only): only their hashes are stored, so the list never shows a secret."""
    require_admin(staff)
    context = await _work(request, lambda uow, _now: _tokens_context(uow))
    if format == "csv":
        return csv_response(
            "api_tokens.csv",
            ["id", "name", "role", "reseller", "created_at", "last_used_at", "revoked_at"],
            [
                (
                    t.id,
                    t.name,
                    t.role,
                    context["reseller_names"].get(t.reseller_id, ""),
                    t.created_at.isoformat(),
                    t.last_used_at.isoformat() if t.last_used_at else "",
                    t.revoked_at.isoformat() if t.revoked_at else "",
                )
                for t in context["tokens"]
            ],
        )
    context.update(error=None, form={}, secret=None)
    return _page(request, staff, "console/tokens.html", context)


@router.post("/tokens")
async def create_api_token(request: Request, staff: Staff) -> Response:
    """Creates a token and shows its secret on this one response; it is never shown again."""
    require_admin(staff)
    form = await form_of(request)

    def create(uow: UnitOfWork, now: datetime) -> str:
        return create_token(
            uow,
            name=form.get("name", ""),
            role=form.get("role", ""),
            reseller=form.get("reseller", "").strip() or None,
            now=now,
            actor=staff.actor,
        ).plaintext

    try:
        secret: str | None = await _work(request, create)
        error, status, shown = None, 200, {}
    except IspbillError as exc:
        secret, error, status, shown = None, str(exc), 422, form
    context = await _work(request, lambda uow, _now: _tokens_context(uow))
    context.update(error=error, form=shown, secret=secret)
    return _page(request, staff, "console/tokens.html", context, status=status)


@router.post("/tokens/{token_id}/revoke")
async def revoke_api_token(request: Request, staff: Staff, token_id: int) -> Response:
    require_admin(staff)
    await form_of(request)
    try:
        await _work(
            request,
            lambda uow, now: revoke_token(uow, token_id=token_id, now=now, actor=staff.actor),
        )
    except IspbillError as exc:
        context = await _work(request, lambda uow, _now: _tokens_context(uow))
        context.update(error=str(exc), form={}, secret=None)
        return _page(request, staff, "console/tokens.html", context, status=422)
    return redirect(request, "/console/tokens")
