"""A customer's services in the console: a new service, and the actions on one (reactivate,
change plan, terminate, suspend and lift, promise to pay, the network login, "active to").

Each is one use case on a service of a customer the user may see (anyone else's is a 404); a
refusal is shown on the customer's page next to the service's form.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.errors import NotFound
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.entrypoints.web.common import (
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    parse_day,
    work,
)
from ispbill.entrypoints.web.console.customers import Action, act
from ispbill.entrypoints.web.console.editing import (
    EditPage,
    FormField,
    edit_page,
    submit,
    whole_number,
)
from ispbill.entrypoints.web.session import StaffPrincipal, check_visible, require_write
from ispbill.use_cases.billing import scheduled_changes as scheduled
from ispbill.use_cases.billing.plan_changes import change_plan, terminate_service
from ispbill.use_cases.catalog.name_lookups import plan_id_of
from ispbill.use_cases.collections.suspensions import (
    SuspendRequest,
    lift_service,
    profile_names,
    promise_to_pay,
    suspend_service,
)
from ispbill.use_cases.network.identities import NewIdentity, set_identity
from ispbill.use_cases.queries import console_catalog
from ispbill.use_cases.service_lifecycle.new_services import NewService, add_service
from ispbill.use_cases.service_lifecycle.pauses import reactivate_service, schedule_pause
from ispbill.use_cases.service_lifecycle.service_edits import ServiceChanges
from ispbill.use_cases.service_lifecycle.service_edits import (
    update_service as update_service_use_case,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.post("/customers/{customer_id}/services")
async def create_service(request: Request, staff: Staff, customer_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewService(
            customer_id=customer_id,
            plan_id=plan_id_of(uow, form.get("plan", "")),
            active_from=parse_day(form.get("active_from", ""), "active_from"),
            active_to=parse_day(form.get("active_to", ""), "active_to"),
        )
        return add_service(uow, spec=spec, now=now, actor=staff.actor)

    return await act(request, staff, customer_id, "new-service", run)


def _customer_of_service(uow: UnitOfWork, staff: StaffPrincipal, service_id: int) -> int:
    """The id of the service's customer, or a 404 for a service this user may not see."""
    service = console_catalog.service(uow.session, service_id)
    if service is None:
        raise HTTPException(404, "no such service")
    check_visible(staff, console_catalog.customer(uow.session, service.customer_id))
    return service.customer_id


async def _service_act(
    request: Request,
    staff: StaffPrincipal,
    service_id: int,
    action: Action,
    form_name: str = "service",
) -> Response:
    customer_id = await work(
        request, lambda uow, _now: _customer_of_service(uow, staff, service_id)
    )
    return await act(request, staff, customer_id, f"{form_name}-{service_id}", action)


@router.post("/services/{service_id}/reactivate")
async def reactivate(request: Request, staff: Staff, service_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return reactivate_service(
            uow,
            service_id=service_id,
            active_to=parse_day(form.get("active_to", ""), "active_to"),
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, run)


@router.post("/services/{service_id}/change-plan")
async def change_service_plan(request: Request, staff: Staff, service_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return change_plan(
            uow,
            service_id=service_id,
            plan_id=plan_id_of(uow, form.get("plan", "")),
            effective=parse_day(form.get("effective", ""), "effective"),
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, run)


def _termination(
    uow: UnitOfWork, staff: StaffPrincipal, service_id: int, form: Mapping[str, str]
) -> Confirmation:
    """What terminating the service with the posted ``form`` does, before it is done."""
    customer_id = _customer_of_service(uow, staff, service_id)
    service = console_catalog.service(uow.session, service_id)
    customer = console_catalog.customer(uow.session, customer_id)
    assert service is not None
    assert customer is not None
    fields = {k: form.get(k, "") for k in ("effective", "reason")}
    day = fields["effective"].strip() or "today"
    return Confirmation(
        title=f"Terminate service #{service_id}",
        consequence=(
            f"This will terminate service #{service_id} ({service.plan.name}) of "
            f"{customer.name} from {day}: it ends for good, the network stops it at once, days "
            "paid in advance from that day are credited back (a credit note), days used in "
            "arrears are charged, and an ended service cannot be reactivated (a new service "
            "is needed). To keep today as a day of service, schedule the termination instead."
        ),
        action=f"/console/services/{service_id}/terminate",
        back=f"/console/customers/{customer_id}#service-{service_id}",
        button="Terminate service",
        fields=fields,
    )


@router.post("/services/{service_id}/terminate")
async def terminate(request: Request, staff: Staff, service_id: int) -> Response:
    """The first post states what terminating does; it is done only with the token of that
    confirmation as it stands now."""
    require_write(staff)
    form = await form_of(request)
    confirmation = await work(request, lambda uow, _now: _termination(uow, staff, service_id, form))
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return terminate_service(
            uow,
            service_id=service_id,
            effective=parse_day(form.get("effective", ""), "effective"),
            reason=form.get("reason") or None,
            now=now,
            actor=staff.actor,
        )

    return await _service_act(request, staff, service_id, run)


SUSPEND_FIELDS = ("reason", "starts_on", "ends_on", "suspend_invoicing", "repeat_yearly", "note")


def suspension_consequence(
    service: Any, customer_name: str, reason_name: str, form: Mapping[str, str]
) -> str:
    """What suspending ``service`` with the posted ``form`` does, in one paragraph with its
    figures (shared by the service's own confirmation and the bulk suspension's)."""
    starts, ends = form.get("starts_on", "").strip(), form.get("ends_on", "").strip()
    when = f"from {starts}" if starts else "now"
    if ends:
        when += f" to {ends} (its last day)"
    if form.get("repeat_yearly") == "1":
        when += ", every year"
    billing = (
        "no charges for the suspended days (invoicing suspended too)"
        if form.get("suspend_invoicing") == "1"
        else "billing continues as usual"
    )
    return (
        f"This will suspend service #{service.id} ({service.plan.name}) of {customer_name} "
        f"{when} with the reason {reason_name!r}: the subscriber loses normal access (the "
        f"reason's walled garden or a reject) and the NAS is told when it starts; {billing}. "
        "Lifting it restores access."
    )


def _suspension(
    uow: UnitOfWork, staff: StaffPrincipal, service_id: int, form: Mapping[str, str]
) -> tuple[int, Confirmation]:
    customer_id = _customer_of_service(uow, staff, service_id)
    service = console_catalog.service(uow.session, service_id)
    customer = console_catalog.customer(uow.session, customer_id)
    assert service is not None
    assert customer is not None
    reason = form.get("reason", "") or SuspensionReason.NOT_SET.value
    name = profile_names(uow).get(reason, reason)
    fields = {k: form.get(k, "") for k in SUSPEND_FIELDS}
    fields["reason"] = reason
    return customer_id, Confirmation(
        title=f"Suspend service #{service_id}",
        consequence=suspension_consequence(service, customer.name, name, fields),
        action=f"/console/services/{service_id}/suspend",
        back=f"/console/customers/{customer_id}#service-{service_id}",
        button="Suspend service",
        fields=fields,
    )


@router.get("/services/{service_id}/suspend")
async def confirm_suspend(request: Request, staff: Staff, service_id: int) -> Response:
    """What the suspension does, before it is done."""
    require_write(staff)
    query = dict(request.query_params)
    _, confirmation = await work(
        request, lambda uow, _now: _suspension(uow, staff, service_id, query)
    )
    return confirmation_page(request, staff, confirmation, {})


@router.post("/services/{service_id}/suspend")
async def suspend(request: Request, staff: Staff, service_id: int) -> Response:
    """ISPadmin: suspend now, or plan a FROM-TO window (yearly, with or without invoicing).
    Done only with the token of the confirmation as it stands now."""
    require_write(staff)
    form = await form_of(request)
    _, confirmation = await work(
        request, lambda uow, _now: _suspension(uow, staff, service_id, form)
    )
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = SuspendRequest(
            service_id=service_id,
            reason=form.get("reason", SuspensionReason.NOT_SET),
            suspend_invoicing=form.get("suspend_invoicing") == "1",
            starts_on=parse_day(form.get("starts_on", ""), "starts_on"),
            ends_on=parse_day(form.get("ends_on", ""), "ends_on"),
            repeat_yearly=form.get("repeat_yearly") == "1",
            note=form.get("note", ""),
        )
        return suspend_service(uow, spec=spec, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, run)


@router.post("/services/{service_id}/lift")
async def lift(request: Request, staff: Staff, service_id: int) -> Response:
    """A yearly window comes back next year unless "end the repetition" is ticked."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return lift_service(
            uow,
            service_id=service_id,
            now=now,
            actor=staff.actor,
            note=form.get("note", ""),
            end_repetition=form.get("end_repetition") == "1",
        )

    return await _service_act(request, staff, service_id, run)


@router.post("/services/{service_id}/promise")
async def promise(request: Request, staff: Staff, service_id: int) -> Response:
    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        text = form.get("days", "").strip()
        days = int(text) if text.isdigit() else None
        return promise_to_pay(uow, service_id=service_id, days=days, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, run)


@router.post("/services/{service_id}/identity")
async def service_identity(request: Request, staff: Staff, service_id: int) -> Response:
    """How the service logs in on the network; an empty password keeps the stored one."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        spec = NewIdentity(
            service_id=service_id,
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

    return await _service_act(request, staff, service_id, run, form_name="identity")


@router.post("/services/{service_id}/schedule")
async def schedule(request: Request, staff: Staff, service_id: int) -> Response:
    """A plan change or a termination planned for the period's end or a future day."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        day = parse_day(form.get("on", ""), "on")
        if form.get("kind") == scheduled.PLAN_CHANGE:
            return scheduled.schedule_plan_change(
                uow,
                service_id=service_id,
                plan_id=plan_id_of(uow, form.get("plan", "")),
                on=day,
                now=now,
                actor=staff.actor,
                reason=form.get("reason", ""),
            )
        return scheduled.schedule_termination(
            uow,
            service_id=service_id,
            last_day=day,
            at_period_end=form.get("at_period_end") == "1",
            now=now,
            actor=staff.actor,
            reason=form.get("reason", ""),
        )

    return await _service_act(request, staff, service_id, run, form_name="schedule")


@router.post("/scheduled-changes/{change_id}/cancel")
async def cancel_scheduled(request: Request, staff: Staff, change_id: int) -> Response:
    def owner(uow: UnitOfWork, _now: datetime) -> int:
        try:
            customer_id = scheduled.change_customer(uow, change_id)
        except NotFound:
            raise HTTPException(404, "no such scheduled change") from None
        check_visible(staff, console_catalog.customer(uow.session, customer_id))
        return customer_id

    customer_id = await work(request, owner)

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        return scheduled.cancel_scheduled(
            uow, change_id=change_id, now=now, actor=staff.actor, reason=form.get("reason", "")
        )

    return await act(request, staff, customer_id, "services", run)


@router.post("/services/{service_id}/active-to")
async def active_to(request: Request, staff: Staff, service_id: int) -> Response:
    """UISP "active to": the service pauses after this day; an empty day clears it."""

    def run(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        day = parse_day(form.get("active_to", ""), "active_to")
        return schedule_pause(uow, service_id=service_id, active_to=day, now=now, actor=staff.actor)

    return await _service_act(request, staff, service_id, run)


# -- editing a service that has not started (issue 17) ----------------------------------------


def _service_page(staff: StaffPrincipal, service_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        _customer_of_service(uow, staff, service_id)
        service = console_catalog.service(uow.session, service_id)
        assert service is not None  # checked just above
        enabled = sorted(int(o["months"]) for o in service.plan.period_options) or [1]
        return EditPage(
            title=f"Edit service {service.id} ({service.plan.name})",
            action=f"/console/services/{service.id}/edit",
            back=f"/console/customers/{service.customer_id}",
            fields=[
                FormField("active_from", "First day", service.active_from.isoformat(), "date"),
                FormField(
                    "period_months",
                    "Billing period, months",
                    str(service.period_months or 1),
                    "select",
                    [(str(m), str(m)) for m in enabled],
                ),
                FormField(
                    "invoicing_mode",
                    "Invoicing mode",
                    service.invoicing_mode or "",
                    "select",
                    [("", "the customer's"), *[(m.value, m.value) for m in InvoicingMode]],
                ),
            ],
            notes=(
                "Only a service that has not started changes here; a running one changes its "
                "plan, pauses or ends from the customer's page.",
            ),
        )

    return load


@router.get("/services/{service_id}/edit")
async def edit_service_form(request: Request, staff: Staff, service_id: int) -> Response:
    require_write(staff)
    return edit_page(request, staff, await work(request, _service_page(staff, service_id)))


@router.post("/services/{service_id}/edit")
async def update_service(request: Request, staff: Staff, service_id: int) -> Response:
    require_write(staff)
    load = _service_page(staff, service_id)
    page = await work(request, load)

    def save(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        changes = ServiceChanges(
            active_from=parse_day(form.get("active_from", ""), "active_from"),
            period_months=whole_number(form.get("period_months"), "period_months"),
            invoicing_mode=form.get("invoicing_mode"),
        )
        return update_service_use_case(
            uow, service_id=service_id, changes=changes, now=now, actor=staff.actor
        )

    return await submit(request, staff, load=load, save=save, done=page.back)
