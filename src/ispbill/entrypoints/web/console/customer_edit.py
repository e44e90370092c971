"""Editing a customer in the console (``/console/customers/{id}/edit``): every field of its
record and terms, validated as on creation (a refusal is shown above the form, with what was
typed kept, and nothing is written); archive and restore. The use case records one event with
the old and new values; money limits apply at once, the billing timezone, cycle and invoicing
mode only between billing periods (refused while a service runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ispbill.domain.calendar import CycleKind
from ispbill.domain.customers import BusinessModel, InvoicingMode
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import (
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    work,
)
from ispbill.entrypoints.web.console.customers import visible_customer
from ispbill.entrypoints.web.console.editing import (
    ArchiveAction,
    EditPage,
    FormField,
    edit_page,
    joined,
    lines,
    with_typed,
)
from ispbill.entrypoints.web.session import StaffPrincipal, require_write
from ispbill.use_cases.catalog import customer_edits as edit_cases
from ispbill.use_cases.catalog.customer_records import ContactRecord, record_values
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


def _major(minor: int | None, currency: str) -> str:
    return "" if minor is None else f"{Money(minor, currency).to_decimal():f}"


def customer_form(customer: Any, classes: list[Any]) -> EditPage:
    record = record_values(customer)
    fields = [
        FormField("name", "Name", customer.name),
        FormField(
            "customer_class",
            "Customer class",
            str(customer.class_id),
            "select",
            [(str(c.id), c.name) for c in classes],
        ),
        FormField(
            "emails",
            "Contact e-mails (one per line, the first primary)",
            joined(record["emails"]),
            "textarea",
        ),
        FormField(
            "phones",
            "Contact phones (one per line, the first primary)",
            joined(record["phones"]),
            "textarea",
        ),
        FormField("billing_address", "Billing address", customer.billing_address, "textarea"),
        FormField("service_address", "Service address", customer.service_address, "textarea"),
        FormField(
            "service_gps",
            "Service location (LAT,LON)",
            record["service_gps"],
            hint="e.g. 50.087451,14.420671",
        ),
        FormField(
            "company_registration_number",
            "Company registration number",
            customer.company_registration_number,
        ),
        FormField(
            "vat_id", "VAT id", customer.vat_id, hint="country prefix and number, e.g. CZ12345678"
        ),
        FormField(
            "internal_notes",
            "Internal notes (never shown to the subscriber)",
            customer.internal_notes,
            "textarea",
        ),
        FormField(
            "locale",
            "Language",
            customer.locale,
            "select",
            [("en_US", "English"), ("cs_CZ", "Čeština")],
        ),
        FormField(
            "credit_limit",
            f"Credit limit ({customer.currency}, postpaid; at once)",
            _major(customer.credit_limit_minor, customer.currency),
        ),
        FormField(
            "minimum_balance",
            f"Minimum balance ({customer.currency}, prepaid; at once)",
            _major(customer.minimum_balance_minor, customer.currency),
        ),
        FormField(
            "use_credit_automatically",
            "Pay new invoices from credit",
            "on" if customer.use_credit_automatically else "",
            "checkbox",
        ),
        FormField(
            "grace_days",
            "Grace days (empty: the class's)",
            "" if customer.grace_days is None else str(customer.grace_days),
        ),
        FormField(
            "notification_emails",
            "Notification e-mails (one per line; empty: the class's)",
            joined(customer.notification_emails),
            "textarea",
        ),
        FormField(
            "custom_data",
            "Custom data (NAME=VALUE, one per line)",
            "\n".join(f"{k}={v}" for k, v in sorted(customer.custom_data.items())),
            "textarea",
        ),
        FormField(
            "business_model",
            "Business model",
            customer.business_model,
            "select",
            [(m.value, m.value) for m in BusinessModel],
        ),
        FormField(
            "billing_cycle",
            "Billing cycle (between periods only)",
            customer.cycle_kind,
            "select",
            [(c.value, c.value) for c in CycleKind],
        ),
        FormField(
            "cycle_n",
            "N of every_n_days / every_n_months",
            str(customer.cycle_n)
            if customer.cycle_kind in (CycleKind.EVERY_N_DAYS, CycleKind.EVERY_N_MONTHS)
            else "",
        ),
        FormField(
            "billing_timezone", "Billing timezone (between periods only)", customer.billing_timezone
        ),
        FormField(
            "invoicing_mode",
            "Invoicing mode (between periods only)",
            customer.invoicing_mode,
            "select",
            [(m.value, m.value) for m in InvoicingMode],
        ),
        FormField("reason", "Reason for the change (kept in the event log)", ""),
    ]
    archived = customer.archived_at is not None
    archive = ArchiveAction(
        f"/console/customers/{customer.id}/{'restore' if archived else 'archive'}",
        "Restore" if archived else "Archive",
        "Restoring brings the customer back to the lists; it may take services again."
        if archived
        else "Archiving hides the customer from the lists and refuses new services; its "
        "history, invoices and payments stay. Every service must have ended first.",
    )
    return EditPage(
        title=f"Edit {customer.name}",
        action=f"/console/customers/{customer.id}/edit",
        back=f"/console/customers/{customer.id}",
        fields=fields,
        archive=archive,
        notes=("This customer is archived.",) if archived else (),
    )


def _load(staff: StaffPrincipal, customer_id: int) -> Any:
    def job(uow: Any, _now: datetime) -> EditPage:
        customer = visible_customer(uow, staff, customer_id)
        return customer_form(customer, console_catalog.classes(uow.session, by_name=True))

    return job


@router.get("/customers/{customer_id}/edit")
async def edit_customer_form(request: Request, staff: Staff, customer_id: int) -> Response:
    require_write(staff)
    page = await work(request, _load(staff, customer_id))
    return edit_page(request, staff, page)


def _int(text: str, field: str) -> int | None:
    if not text.strip():
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationError(field, "must be a whole number") from None


def changes_from(
    form: dict[str, str], current: dict[str, str], class_id: int
) -> edit_cases.CustomerChanges:
    data = {}
    for line in lines(form.get("custom_data")):
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError("custom_data", f"{line!r}: expected NAME=VALUE")
        data[key.strip()] = value.strip()
    removed = {key: "" for key in current if key not in data}
    cycle = form.get("billing_cycle", "")
    return edit_cases.CustomerChanges(
        name=form.get("name"),
        customer_class_id=class_id,
        credit_limit=form.get("credit_limit"),
        minimum_balance=form.get("minimum_balance"),
        use_credit_automatically="use_credit_automatically" in form,
        grace_days=_int(form.get("grace_days", ""), "grace_days"),
        locale=form.get("locale"),
        notification_emails=lines(form.get("notification_emails")),
        custom_data={**removed, **data},
        business_model=form.get("business_model"),
        billing_timezone=form.get("billing_timezone"),
        billing_cycle=cycle or None,
        cycle_n=_int(form.get("cycle_n", ""), "cycle_n")
        if cycle in (CycleKind.EVERY_N_DAYS, CycleKind.EVERY_N_MONTHS)
        else None,
        invoicing_mode=form.get("invoicing_mode"),
        record=ContactRecord(
            emails=lines(form.get("emails")),
            phones=lines(form.get("phones")),
            billing_address=form.get("billing_address", ""),
            service_address=form.get("service_address", ""),
            service_gps=form.get("service_gps", ""),
            company_registration_number=form.get("company_registration_number", ""),
            vat_id=form.get("vat_id", ""),
            internal_notes=form.get("internal_notes", ""),
        ),
    )


@router.post("/customers/{customer_id}/edit")
async def update_customer(request: Request, staff: Staff, customer_id: int) -> Response:
    require_write(staff)
    form = await form_of(request)

    def current(uow: Any, _now: datetime) -> dict[str, str]:
        return dict(visible_customer(uow, staff, customer_id).custom_data)

    custom = await work(request, current)

    def save(uow: Any, now: datetime) -> object:
        class_id = customer_class_id_of(uow, form.get("customer_class", ""))
        return edit_cases.update_customer(
            uow,
            customer_id=customer_id,
            changes=changes_from(form, custom, class_id),
            now=now,
            actor=staff.actor,
            reason=form.get("reason", ""),
        )

    try:
        await work(request, save)
    except IspbillError as exc:
        page = await work(request, _load(staff, customer_id))
        return edit_page(request, staff, with_typed(page, form), error=str(exc), status=422)
    return redirect(request, f"/console/customers/{customer_id}")


def archive_confirmation(customer_id: int, name: str, reason: str) -> Confirmation:
    """What archiving a customer does, stated before it is done (restoring needs none)."""
    return Confirmation(
        title=f"Archive customer #{customer_id}",
        consequence=(
            f"This will archive {name} (#{customer_id}): the customer leaves the default lists "
            "and takes no new services until restored; its services (all ended), invoices, "
            "payments and events are kept. Reason: "
            f"{reason.strip() or '(none given)'}"
        ),
        action=f"/console/customers/{customer_id}/archive",
        back=f"/console/customers/{customer_id}/edit",
        button="Archive customer",
        fields={"reason": reason},
    )


async def _archive_or_restore(
    request: Request, staff: StaffPrincipal, customer_id: int, *, archive: bool
) -> Response:
    require_write(staff)
    form = await form_of(request)
    name = await work(request, lambda uow, _now: visible_customer(uow, staff, customer_id).name)
    if archive:
        confirmation = archive_confirmation(customer_id, name, form.get("reason", ""))
        if not is_confirmed(request, form, confirmation):
            return confirmation_page(request, staff, confirmation, form)
    use_case = edit_cases.archive_customer if archive else edit_cases.restore_customer
    try:
        await work(
            request,
            lambda uow, now: use_case(
                uow,
                customer_id=customer_id,
                now=now,
                actor=staff.actor,
                reason=form.get("reason", ""),
            ),
        )
    except IspbillError as exc:
        page = await work(request, _load(staff, customer_id))
        return edit_page(request, staff, page, error=str(exc), status=422)
    return redirect(request, f"/console/customers/{customer_id}")


@router.post("/customers/{customer_id}/archive")
async def archive_customer(request: Request, staff: Staff, customer_id: int) -> Response:
    return await _archive_or_restore(request, staff, customer_id, archive=True)


@router.post("/customers/{customer_id}/restore")
async def restore_customer(request: Request, staff: Staff, customer_id: int) -> Response:
    return await _archive_or_restore(request, staff, customer_id, archive=False)
