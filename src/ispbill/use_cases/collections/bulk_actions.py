"""Bulk actions on a list of customers (issue 17): suspend, lift, change plan, one-off charge.

Two steps, as the console shows them: ``preview`` says exactly which services of which
customers change and how (and which customers have nothing to change), reading only; ``apply``
carries the same request out through the existing use cases, customer by customer, one unit
of work each, so one customer's refusal (a plan in another currency, a service already
suspended by hand meanwhile) is reported for that customer and the others go on. Every
change is the use case's own event, with the operator as its actor.

Suspensions and lifts of one customer's services commit together (the use cases'
non-committing cores); a plan change commits per service, as ``change_plan`` bills each
service up to date under the customer's lock before it moves it. A one-off charge is
``extras.add_extra_charge`` per customer, keyed by the confirmation (``BulkRequest.key``), so
the same confirmed form posted twice charges nobody twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Customer, Plan, Service
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.customers import BalanceControl
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.domain.lifecycle import ServiceState
from ispbill.use_cases.billing.extras import add_extra_charge, parse_amount
from ispbill.use_cases.billing.plan_changes import change_plan
from ispbill.use_cases.collections.suspensions import (
    SuspendRequest,
    current_manual,
    lift_uncommitted,
    profile_names,
    suspend_uncommitted,
)

MAX_CUSTOMERS = 1000  # one preview a person can read, and one request's worth of work


class BulkKind(StrEnum):
    SUSPEND = "suspend"
    LIFT = "lift"
    CHANGE_PLAN = "change_plan"
    CHARGE = "charge"


@dataclass(frozen=True, slots=True)
class BulkRequest:
    kind: BulkKind
    reason: str = ""  # suspend: the manual reason
    suspend_invoicing: bool = False
    note: str = ""
    plan_id: int | None = None  # change plan: the new plan
    amount: str = ""  # one-off charge: major units, the customer's currency
    description: str = ""
    key: str = ""  # one-off charge: the idempotency key's stem (one per confirmation)


@dataclass(frozen=True, slots=True)
class BulkLine:
    """One service that changes, a customer charged (``service_id`` None, ``acts``), or a
    customer with nothing to change (``acts`` False)."""

    customer_id: int
    customer_name: str
    service_id: int | None
    change: str
    acts: bool = True


@dataclass(frozen=True, slots=True)
class BulkResult:
    customer_id: int
    customer_name: str
    done: bool
    message: str  # what was done, or the refusal (``field: rule``)


def parse_kind(text: str) -> BulkKind:
    try:
        return BulkKind(text)
    except ValueError:
        choices = ", ".join(k.value for k in BulkKind)
        raise ValidationError("action", f"{text!r} is not one of {choices}") from None


def preview(
    uow: UnitOfWork, *, customer_ids: Sequence[int], request: BulkRequest
) -> list[BulkLine]:
    """What ``apply`` would change for ``customer_ids``, in customer and service id order."""
    if len(customer_ids) > MAX_CUSTOMERS:
        raise ValidationError(
            "filter",
            f"matches {len(customer_ids)} customers; at most {MAX_CUSTOMERS} at once, narrow it",
        )
    session = uow.session
    plan = _plan(uow, request)
    reason_name = ""
    if request.kind is BulkKind.SUSPEND:
        names = profile_names(uow)
        if request.reason not in names:
            raise ValidationError("reason", f"{request.reason!r} is not a manual reason")
        reason_name = names[request.reason]
    customers = session.scalars(
        select(Customer).where(Customer.id.in_(list(customer_ids))).order_by(Customer.id)
    ).all()
    lines: list[BulkLine] = []
    if request.kind is BulkKind.CHARGE:
        if not request.description.strip():
            raise ValidationError("description", "is required for a one-off charge")
        for customer in customers:
            price = parse_amount(request.amount, None, customer.currency, "amount")
            prepaid = customer.balance_control == BalanceControl.PREPAID.value
            where = "from the prepaid wallet at once" if prepaid else "on the next invoice"
            change = f"one-off charge {price} {request.description.strip()!r}, {where}"
            lines.append(BulkLine(customer.id, customer.name, None, change))
        return lines
    for customer in customers:
        services = session.scalars(
            select(Service)
            .where(Service.customer_id == customer.id, Service.state != ServiceState.ENDED.value)
            .order_by(Service.id)
        ).all()
        found = [
            BulkLine(customer.id, customer.name, s.id, change)
            for s in services
            if (change := _change(uow, s, request, plan, reason_name))
        ]
        lines += found or [BulkLine(customer.id, customer.name, None, _nothing(request), False)]
    return lines


def _plan(uow: UnitOfWork, request: BulkRequest) -> Plan | None:
    if request.kind is not BulkKind.CHANGE_PLAN:
        return None
    if request.plan_id is None:
        raise ValidationError("plan", "is required to change plans")
    return by_id(uow.session, Plan, request.plan_id, field="plan")


def _change(
    uow: UnitOfWork, service: Service, request: BulkRequest, plan: Plan | None, reason_name: str
) -> str:
    """How ``service`` changes, or "" when it does not."""
    label = f"service #{service.id} ({service.plan.name})"
    match request.kind:
        case BulkKind.SUSPEND:
            if service.state != ServiceState.ACTIVE.value or current_manual(uow, service.id):
                return ""
            billing = ", no charges while suspended" if request.suspend_invoicing else ""
            return f"{label}: active → suspended now, reason {reason_name!r}{billing}"
        case BulkKind.LIFT:
            row = current_manual(uow, service.id)
            if row is None:
                return ""
            return f"{label}: {row.status} suspension ({row.reason}) lifted"
        case BulkKind.CHANGE_PLAN:
            assert plan is not None
            if service.plan_id == plan.id:
                return ""
            return f"{label}: plan {service.plan.name!r} → {plan.name!r} from today, prorated"
        case BulkKind.CHARGE:
            return ""  # a customer's, not a service's (preview lists the customers)


def _nothing(request: BulkRequest) -> str:
    return {
        BulkKind.SUSPEND: "nothing to suspend (no active service without a suspension)",
        BulkKind.LIFT: "nothing to lift (no manual suspension)",
        BulkKind.CHANGE_PLAN: "nothing to change (no live service on another plan)",
        BulkKind.CHARGE: "",
    }[request.kind]


def apply(
    uow_factory: Callable[[], UnitOfWork],
    *,
    lines: Sequence[BulkLine],
    request: BulkRequest,
    now: datetime,
    actor: str,
) -> list[BulkResult]:
    """Carry out the previewed ``lines``: one unit of work per customer; a refusal is that
    customer's result and the next customer goes on."""
    by_customer: dict[int, list[BulkLine]] = {}
    for line in lines:
        by_customer.setdefault(line.customer_id, []).append(line)
    results: list[BulkResult] = []
    for customer_id, mine in by_customer.items():
        name = mine[0].customer_name
        services = [line.service_id for line in mine if line.service_id is not None]
        if not any(line.acts for line in mine):
            results.append(BulkResult(customer_id, name, True, mine[0].change))
            continue
        try:
            with uow_factory() as uow:
                if request.kind is BulkKind.CHARGE:
                    done = _charge_one(uow, customer_id, request, now=now, actor=actor)
                else:
                    done = _apply_one(uow, services, request, now=now, actor=actor)
        except IspbillError as exc:
            results.append(BulkResult(customer_id, name, False, str(exc)))
            continue
        results.append(BulkResult(customer_id, name, True, done))
    return results


def _charge_one(
    uow: UnitOfWork, customer_id: int, request: BulkRequest, *, now: datetime, actor: str
) -> str:
    result = add_extra_charge(
        uow,
        customer_id=customer_id,
        amount=request.amount,
        description=request.description,
        key=f"{request.key}:{customer_id}" if request.key else None,
        now=now,
        actor=actor,
    )
    if not result.created:
        return f"charge #{result.charge.id} was already made by this confirmation"
    where = "from the wallet" if result.paid_from_wallet else "for the next invoice"
    return f"charge #{result.charge.id} of {result.charge.gross} {where}"


def _apply_one(
    uow: UnitOfWork, services: list[int], request: BulkRequest, *, now: datetime, actor: str
) -> str:
    match request.kind:
        case BulkKind.SUSPEND:
            for service_id in services:
                spec = SuspendRequest(
                    service_id=service_id,
                    reason=request.reason,
                    suspend_invoicing=request.suspend_invoicing,
                    note=request.note,
                )
                suspend_uncommitted(uow, spec=spec, now=now, actor=actor)
            uow.commit()
            verb = "suspended"
        case BulkKind.LIFT:
            for service_id in services:
                lift_uncommitted(
                    uow, service_id=service_id, now=now, actor=actor, note=request.note
                )
            uow.commit()
            verb = "lifted"
        case BulkKind.CHANGE_PLAN:
            assert request.plan_id is not None
            for service_id in services:
                change_plan(
                    uow, service_id=service_id, plan_id=request.plan_id, now=now, actor=actor
                )
            verb = "moved to the new plan"
        case BulkKind.CHARGE:
            raise AssertionError("a one-off charge is _charge_one's")
    listed = ", ".join(f"#{s}" for s in services)
    return f"service {listed} {verb}" if len(services) == 1 else f"services {listed} {verb}"


def export_rows(uow: UnitOfWork, *, customer_ids: Sequence[int]) -> list[tuple[object, ...]]:
    """The selection as one row per service (a customer without services gets one row), for
    the bulk export's CSV: what a bulk action would act on, to check or keep."""
    session = uow.session
    rows: list[tuple[object, ...]] = []
    customers = session.scalars(
        select(Customer).where(Customer.id.in_(list(customer_ids))).order_by(Customer.id)
    ).all()
    for customer in customers:
        services = session.scalars(
            select(Service).where(Service.customer_id == customer.id).order_by(Service.id)
        ).all()
        head = (customer.id, customer.name, customer.status, customer.balance_control)
        rows += [
            (*head, s.id, s.plan.name, s.state, s.state_reason or "", s.billed_until or "")
            for s in services
        ] or [(*head, "", "", "", "", "")]
    return rows
