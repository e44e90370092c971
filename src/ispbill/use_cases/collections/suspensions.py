"""Manual suspension of a service (ISPadmin client card), its planned windows, and the promise
to pay.

Seed 002: "Reason Suspended: Not set, Non-payer, UnRegistered and optional profiles 1 to 9";
"Suspend service and invoicing: following suspension a service continues to be invoiced by
default. Check this option to suspend invoicing; you can also define date FROM-TO"; "Repeat: the
above mentioned date FROM-TO is used" every year. "To re-activate client, uncheck Suspend
service": lifting is an action with an actor.

Choices: a service has at most one planned or active manual suspension at a time. TO is the
last suspended day. A window starts at the local midnight of FROM and ends at the local
midnight after TO, moved by the tick (``run_windows``); a repeating window's next occurrence
is planned when one ends or is lifted (29 February repeats on 28 February). Suspending
invoicing removes the window's days from the engine's charges (``domain/billing.billable_days``);
without TO the service's billing holds until the lift. Lifting a repeating window ends only this
year's occurrence (the lifted row keeps ``repeat_yearly`` false; next year's row carries the
repetition); ``end_repetition`` ends the repetition itself.
Days of the window that were already charged in advance when the suspension was entered
(``charged_until``) are credited when the window ends or is lifted, once its true length is
known: a ``refund`` charge and a credit note correcting the invoice that listed them, as a
termination credits its unused days (``use_cases/billing/plan_changes.py``).

Promise to pay (beyond ISPadmin): an operator, or the subscriber once per billing period from
the walled garden or the customer portal (``subscriber_offer`` says whether it may), restores a non-payer for a number of days (a suspended service is active
again, a throttled one gets its speed back); collections holds the stage back until then and
suspends or throttles again at the end if the debt is still open
(``collections._review_one``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.invoice_store import apply_credit
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import Charge as ChargeRow
from ispbill.adapters.db.models import Customer, Invoice, Service, ServiceSuspension
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import NOT_PLAN_CHARGES, Charge, ChargeKind
from ispbill.domain.calendar import (
    CycleKind,
    Period,
    local_date,
    local_midnight,
    period_containing,
)
from ispbill.domain.customers import BalanceControl
from ispbill.domain.dates import check_date
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.invoicing import prorated_credit_line
from ispbill.domain.lifecycle import (
    ServiceEvent,
    ServiceState,
    SuspensionReason,
    SuspensionSource,
    SuspensionStatus,
)
from ispbill.domain.plans import instantiate_cycle
from ispbill.domain.ranges import IdRange
from ispbill.domain.taxes import TaxSplit
from ispbill.use_cases.billing.plan_changes import (
    charge_as_line,
    issue_credit_note,
    post_change_charge,
)
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.collections.collection_policy import load as load_policy
from ispbill.use_cases.collections.non_payers import mark_for_review, review_customers
from ispbill.use_cases.network import access_changes
from ispbill.use_cases.notifications import mail_outbox as notifications

ENGINE = "engine"
# reasons the engine sets on its own; an operator picks one of the others
ENGINE_REASONS = (SuspensionReason.CREDIT_LIMIT.value, SuspensionReason.FUP.value)
MANUAL_REASONS = tuple(r.value for r in SuspensionReason if r.value not in ENGINE_REASONS)
MAX_NOTE = 500


@dataclass(frozen=True)
class SuspendRequest:
    service_id: int
    reason: str
    suspend_invoicing: bool = False
    starts_on: date | None = None  # FROM; today when left out
    ends_on: date | None = None  # TO, the last suspended day; open when left out
    repeat_yearly: bool = False
    note: str = ""


def find_service(uow: UnitOfWork, service_id: int) -> Service:
    return by_id(uow.session, Service, service_id, field="service")


def _locked(uow: UnitOfWork, service_id: int) -> tuple[Service, Customer]:
    """The service and its customer, under the customer row lock (the per-customer mutex)."""
    uow.begin_write()
    service = find_service(uow, service_id)
    customer = uow.session.get(Customer, service.customer_id)
    assert customer is not None
    if uow.dialect == "postgresql":
        uow.session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())
        uow.session.refresh(customer)
        uow.session.refresh(service)
    return service, customer


def current_manual(uow: UnitOfWork, service_id: int) -> ServiceSuspension | None:
    return uow.session.scalars(
        select(ServiceSuspension).where(
            ServiceSuspension.service_id == service_id,
            ServiceSuspension.source == SuspensionSource.MANUAL.value,
            ServiceSuspension.status.in_(
                (SuspensionStatus.PLANNED.value, SuspensionStatus.ACTIVE.value)
            ),
        )
    ).first()


def _reason(raw: str) -> str:
    reason = raw.strip().lower()
    if reason in ENGINE_REASONS:
        raise ValidationError("reason", f"{reason} is set by the engine, not by hand")
    if reason not in MANUAL_REASONS:
        raise ValidationError("reason", f"must be one of {', '.join(MANUAL_REASONS)}")
    return reason


def _validate_window(spec: SuspendRequest, today: date) -> tuple[date, date | None]:
    for field, day in (("starts_on", spec.starts_on), ("ends_on", spec.ends_on)):
        if day is not None:
            check_date(field, day)
    starts = spec.starts_on or today
    if starts < today:
        raise ValidationError("starts_on", f"must be today ({today}) or later")
    ends = spec.ends_on
    if ends is not None and ends < starts:
        raise ValidationError("ends_on", f"must be on or after starts_on ({starts})")
    if spec.repeat_yearly:
        if ends is None:
            raise ValidationError("repeat_yearly", "a repeating window needs an end date (TO)")
        if (ends - starts).days >= 365:
            raise ValidationError("ends_on", "a repeating window must be shorter than a year")
    if len(spec.note) > MAX_NOTE:
        raise ValidationError("note", f"must be at most {MAX_NOTE} characters")
    return starts, ends


def suspend_service(
    uow: UnitOfWork, *, spec: SuspendRequest, now: datetime, actor: str
) -> ServiceSuspension:
    """Suspend now, or plan a FROM-TO window; billing follows in the same transaction."""
    row = suspend_uncommitted(uow, spec=spec, now=now, actor=actor)
    uow.commit()
    return row


def suspend_uncommitted(
    uow: UnitOfWork, *, spec: SuspendRequest, now: datetime, actor: str
) -> ServiceSuspension:
    """``suspend_service`` without the commit: the caller commits (a bulk suspension commits
    a customer's services together)."""
    reason = _reason(spec.reason)
    service, customer = _locked(uow, spec.service_id)
    zone = customer.billing_timezone
    today = local_date(now, zone)
    starts, ends = _validate_window(spec, today)
    existing = current_manual(uow, service.id)
    if existing is not None:
        raise Conflict(
            "service",
            f"service {service.id} already has a {existing.status} suspension "
            f"#{existing.id} ({existing.reason}); lift it first",
        )
    immediate = starts <= today
    state = ServiceState(service.state)
    allowed = (ServiceState.ACTIVE, ServiceState.SUSPENDED)
    if (immediate and state not in allowed) or state is ServiceState.ENDED:
        raise ValidationError(
            "service", f"service {service.id} is {state.value}; only a live service is suspended"
        )
    charged = service.billed_until
    row = ServiceSuspension(
        service_id=service.id,
        customer_id=customer.id,
        reason=reason,
        source=SuspensionSource.MANUAL.value,
        suspend_invoicing=spec.suspend_invoicing,
        starts_on=starts,
        ends_on=ends,
        repeat_yearly=spec.repeat_yearly,
        charged_until=charged if spec.suspend_invoicing and charged and charged > starts else None,
        status=SuspensionStatus.PLANNED.value,
        next_change_at=local_midnight(starts, zone),
        note=spec.note.strip(),
        actor=actor,
        created_at=now,
    )
    uow.session.add(row)
    uow.session.flush()
    if immediate:
        _start(uow, row, service, customer, now=now, actor=actor)
    else:
        _record_planned(uow, row, now=now, actor=actor)
    uow.session.flush()
    reevaluate_customer(uow, customer.id, now=now, actor=actor)  # charges follow the window
    return row


def _record_planned(uow: UnitOfWork, row: ServiceSuspension, *, now: datetime, actor: str) -> None:
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="suspension.planned",
        subject_type="service",
        subject_id=row.service_id,
        customer_id=row.customer_id,
        reason=row.reason,
        figures=_window_figures(row),
    )


def _window_figures(row: ServiceSuspension) -> dict[str, object]:
    return {
        "suspension": row.id,
        "suspend_invoicing": row.suspend_invoicing,
        "starts_on": row.starts_on.isoformat(),
        "ends_on": row.ends_on.isoformat() if row.ends_on else None,
        "repeat_yearly": row.repeat_yearly,
        "note": row.note or None,
    }


def _start(
    uow: UnitOfWork,
    row: ServiceSuspension,
    service: Service,
    customer: Customer,
    *,
    now: datetime,
    actor: str,
) -> None:
    row.status = SuspensionStatus.ACTIVE.value
    row.next_change_at = (
        local_midnight(row.ends_on + timedelta(days=1), customer.billing_timezone)
        if row.ends_on
        else None
    )
    if service.state not in (ServiceState.ACTIVE.value, ServiceState.SUSPENDED.value):
        return  # a paused or deactivated service has no access to take away
    previous, previous_reason = service.state, service.state_reason
    service.state = ServiceState.SUSPENDED.value
    service.state_reason = row.reason
    service.state_since = now
    access_changes.enqueue(
        uow,
        events.record(
            uow,
            now=now,
            actor=actor,
            kind=f"service.{ServiceState.SUSPENDED.value}",
            subject_type="service",
            subject_id=service.id,
            customer_id=customer.id,
            reason=row.reason,
            figures={"from": previous, "previous_reason": previous_reason, **_window_figures(row)},
        ),
    )


def _end(
    uow: UnitOfWork,
    row: ServiceSuspension,
    service: Service,
    *,
    now: datetime,
    actor: str,
    why: str,
) -> None:
    credit = credit_charged_days(uow, row, service, now=now)
    if service.state == ServiceState.SUSPENDED.value and service.state_reason == row.reason:
        access_changes.move_service(
            uow,
            service,
            to=ServiceState.ACTIVE.value,
            reason=None,
            now=now,
            actor=actor,
            event_reason=why,
            figures={"lifted": row.reason} | _window_figures(row) | credit,
        )
    mark_for_review(uow.session, service.customer_id, now)


def credit_charged_days(
    uow: UnitOfWork, row: ServiceSuspension, service: Service, *, now: datetime
) -> dict[str, object]:
    """Credit the window's days that were charged in advance before it was entered: from FROM
    to the earlier of its end and ``charged_until``, from the charge that covered them (its
    unit price, one rounding), with a credit note. Returns the figures for the event."""
    until = row.charged_until
    if not row.suspend_invoicing or until is None or row.ends_on is None:
        return {}
    end = min(until, row.ends_on + timedelta(days=1))
    if end <= row.starts_on:
        return {}
    session = uow.session
    charged = session.scalars(
        select(ChargeRow)
        .where(
            ChargeRow.service_id == service.id,
            ChargeRow.period_end == until,
            ChargeRow.period_start <= row.starts_on,
            ChargeRow.kind.not_in([k.value for k in NOT_PLAN_CHARGES]),
        )
        .order_by(ChargeRow.id.desc())
        .limit(1)
    ).first()
    if charged is None:
        return {}
    days = (end - row.starts_on).days
    line = replace(
        prorated_credit_line(
            charge_as_line(charged), days, description=f"{charged.description} (suspended)"
        ),
        period_start=row.starts_on,
        period_end=end,
    )
    if line.gross.is_zero:
        return {}
    customer = session.get(Customer, service.customer_id)
    assert customer is not None
    refund = Charge(
        service.id,
        ChargeKind.REFUND,
        Period(row.starts_on, end),
        line.quantity,
        line.unit_price,
        TaxSplit(line.net, line.tax),
        now,
        line.tax_profile,
        charged.description,
    )
    key = f"suspension:{row.id}:credit"
    credit_row = post_change_charge(uow, customer.id, refund, key, now)
    corrected = session.get(Invoice, charged.invoice_id) if charged.invoice_id else None
    note = issue_credit_note(
        uow,
        customer=customer,
        line=line,
        corrected=corrected,
        issue_date=local_date(now, customer.billing_timezone),
        key=f"{key}-note",
        now=now,
        operator=settings_store.load(uow),
    )
    credit_row.invoice_id = note.id
    session.flush()
    if (
        customer.balance_control == BalanceControl.POSTPAID.value
        and customer.use_credit_automatically
    ):
        apply_credit(session, customer, now=now)
    return {"credited": str(line.gross), "credited_days": days, "credit_note": note.number}


def lift_service(
    uow: UnitOfWork,
    *,
    service_id: int,
    now: datetime,
    actor: str,
    note: str = "",
    end_repetition: bool = False,
) -> ServiceSuspension:
    """Lift the service's manual suspension (or cancel a planned one), then bill and review
    collections at once: a debt still overdue suspends it again as a non-payer. A yearly
    window loses only this occurrence (next year's is planned at once, so a summer house
    lifted early in July is still suspended next July) unless ``end_repetition``."""
    row = lift_uncommitted(
        uow, service_id=service_id, now=now, actor=actor, note=note, end_repetition=end_repetition
    )
    uow.commit()
    return row


def lift_uncommitted(
    uow: UnitOfWork,
    *,
    service_id: int,
    now: datetime,
    actor: str,
    note: str = "",
    end_repetition: bool = False,
) -> ServiceSuspension:
    """``lift_service`` without the commit: the caller commits."""
    service, customer = _locked(uow, service_id)
    row = current_manual(uow, service.id)
    if row is None:
        if service.state_reason == SuspensionReason.NON_PAYER.value:
            raise ValidationError(
                "service",
                f"service {service.id} was suspended by collections; a payment that settles the "
                "debt lifts it, or grant a promise to pay (services promise)",
            )
        raise ValidationError("service", f"service {service.id} has no manual suspension to lift")
    if len(note) > MAX_NOTE:
        raise ValidationError("note", f"must be at most {MAX_NOTE} characters")
    was_active = row.status == SuspensionStatus.ACTIVE.value
    following = _close_lifted(
        uow, row, customer, now=now, actor=actor, end_repetition=end_repetition
    )
    if note.strip():
        row.note = (row.note + "\n" if row.note else "") + note.strip()
    if was_active:
        _end(uow, row, service, now=now, actor=actor, why="lifted")
    else:
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="suspension.cancelled",
            subject_type="service",
            subject_id=service.id,
            customer_id=customer.id,
            reason=row.reason,
            figures=_window_figures(row),
        )
    if following is not None:
        _record_planned(uow, following, now=now, actor=actor)
    uow.session.flush()
    reevaluate_customer(uow, customer.id, now=now, actor=actor)
    return row


def _close_lifted(
    uow: UnitOfWork,
    row: ServiceSuspension,
    customer: Customer,
    *,
    now: datetime,
    actor: str,
    end_repetition: bool,
) -> ServiceSuspension | None:
    """Mark the row lifted and cut its window at yesterday; returns next year's occurrence
    when the repetition goes on."""
    today = local_date(now, customer.billing_timezone)
    planned_end, repeated = row.ends_on, row.repeat_yearly
    if row.status != SuspensionStatus.ACTIVE.value or today <= row.starts_on:
        row.ends_on = None  # cancelled before a whole day passed: no window at all
        row.charged_until = None
    elif row.ends_on is None or row.ends_on >= today:
        row.ends_on = today - timedelta(days=1)
    row.repeat_yearly = False  # the repetition, if it goes on, moves to next year's row
    row.status = SuspensionStatus.LIFTED.value
    row.lifted_at = now
    row.lifted_by = actor
    row.next_change_at = None
    if not repeated or planned_end is None:
        return None
    if end_repetition:
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="suspension.repetition_ended",
            subject_type="service",
            subject_id=row.service_id,
            customer_id=row.customer_id,
            reason=row.reason,
            figures={"suspension": row.id, "last_starts_on": row.starts_on.isoformat()},
        )
        return None
    return _plan_next_year(uow, row, planned_end, customer, now=now)


# -- the tick's pass ---------------------------------------------------------------------------


def _next_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _plan_next_year(
    uow: UnitOfWork, row: ServiceSuspension, ends_on: date, customer: Customer, *, now: datetime
) -> ServiceSuspension:
    """The next occurrence of a yearly window (``ends_on``: this one's TO as planned)."""
    starts = _next_year(row.starts_on)
    following = ServiceSuspension(
        service_id=row.service_id,
        customer_id=row.customer_id,
        reason=row.reason,
        source=SuspensionSource.MANUAL.value,
        suspend_invoicing=row.suspend_invoicing,
        starts_on=starts,
        ends_on=_next_year(ends_on),
        repeat_yearly=True,
        status=SuspensionStatus.PLANNED.value,
        next_change_at=local_midnight(starts, customer.billing_timezone),
        note=row.note,
        actor=row.actor,
        created_at=now,
    )
    uow.session.add(following)
    uow.session.flush()
    return following


def run_windows(
    uow_factory: Callable[[], UnitOfWork],
    *,
    now: datetime,
    chunk_size: int = 1000,
    within: IdRange | None = None,
) -> dict[str, int]:
    """Start the planned windows whose FROM has come and end those whose TO has passed (of
    the customers ``within`` a range of ids, when given)."""
    done = {"window_started": 0, "window_ended": 0}
    after = 0
    while True:
        with uow_factory() as uow:
            uow.begin_write()
            query = (
                select(ServiceSuspension)
                .where(
                    ServiceSuspension.next_change_at <= now,
                    ServiceSuspension.status.in_(
                        (SuspensionStatus.PLANNED.value, SuspensionStatus.ACTIVE.value)
                    ),
                    ServiceSuspension.id > after,
                    *(
                        ()
                        if within is None
                        else (ServiceSuspension.customer_id.between(within.low, within.high),)
                    ),
                )
                .order_by(ServiceSuspension.id)
                .limit(chunk_size)
            )
            if uow.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(uow.session.scalars(query))
            if not rows:
                return done
            after = rows[-1].id
            customers: set[int] = set()
            for row in rows:
                customers.add(row.customer_id)
                done[_step(uow, row, now=now)] += 1
            uow.session.flush()
            review_customers(uow, sorted(customers), now=now)
            uow.commit()


def _step(uow: UnitOfWork, row: ServiceSuspension, *, now: datetime) -> str:
    service = uow.session.get(Service, row.service_id)
    customer = uow.session.get(Customer, row.customer_id)
    assert service is not None
    assert customer is not None
    if row.status == SuspensionStatus.PLANNED.value:
        _start(uow, row, service, customer, now=now, actor=ENGINE)
        return "window_started"
    row.status = SuspensionStatus.ENDED.value
    row.next_change_at = None
    _end(uow, row, service, now=now, actor=ENGINE, why="window_ended")
    if row.repeat_yearly and row.ends_on is not None:
        _plan_next_year(uow, row, row.ends_on, customer, now=now)
    return "window_ended"


# -- promise to pay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Promise:
    customer_id: int
    until: datetime
    services: list[int]


def promise_to_pay(
    uow: UnitOfWork,
    *,
    service_id: int,
    days: int | None,
    now: datetime,
    actor: str,
    by_subscriber: bool = False,
) -> Promise:
    """Restore a non-payer's services until ``now + days``: suspended ones are active again and
    throttled ones get their speed back; the stage returns by itself if the debt is still open
    then. A subscriber may promise once per billing period, for the policy's
    ``subscriber_promise_days``."""
    service, customer = _locked(uow, service_id)
    klass = customer.customer_class
    policy = load_policy(uow, klass=klass)
    zone = customer.billing_timezone
    today = local_date(now, zone)
    if by_subscriber:
        if policy.subscriber_promise_days == 0:
            raise ValidationError("promise", "this operator does not offer promises to pay")
        days = policy.subscriber_promise_days
        period = _billing_period_start(customer, today)
        if _promised_in(customer, period):
            raise Conflict(
                "promise", f"already used once in the billing period that began {period}"
            )
        customer.self_promise_period = period
    if days is None or isinstance(days, bool) or not 1 <= days <= policy.promise_days_max:
        raise ValidationError("days", f"must be between 1 and {policy.promise_days_max}")
    suspended, throttled = _restorable(uow, customer)
    if not suspended and not throttled:
        raise ValidationError(
            "service",
            f"service {service.id} is neither suspended nor throttled by collections as a "
            "non-payer; a promise to pay restores only that",
        )
    until = now + timedelta(days=days)
    customer.promise_until = until
    customer.collection_review_at = until
    figures = {"days": days, "until": until.isoformat(), "by_subscriber": by_subscriber}
    for row in suspended:
        _reactivate(uow, row, now=now, actor=actor, figures=figures)
    for row in throttled:
        _unthrottle(uow, row, now=now, actor=actor, figures=figures)
    restored = sorted({s.id for s in suspended} | {s.id for s in throttled})
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="collection.promise",
        subject_type="customer",
        subject_id=customer.id,
        customer_id=customer.id,
        reason="promise_to_pay",
        figures=figures
        | {
            "services": restored,
            "suspended": [s.id for s in suspended],
            "throttled": [s.id for s in throttled],
        },
    )
    if policy.notify_suspension:
        notifications.enqueue_restoration(
            uow, customer, suspended + throttled, promise_until=until, now=now, actor=actor
        )
    uow.commit()
    return Promise(customer.id, until, restored)


def _promised_in(customer: Customer, period: date) -> bool:
    """The subscriber's own promise is once per billing period."""
    return customer.self_promise_period == period


@dataclass(frozen=True)
class SubscriberOffer:
    """What the subscriber's own promise would do now, for a self-service page to show (the
    same rules ``promise_to_pay`` applies with ``by_subscriber``)."""

    days: int  # the policy's subscriber_promise_days; 0: not offered
    used_period: date | None  # the billing period already promised in, if so
    restorable: frozenset[int]  # the services a promise would restore
    until: datetime | None  # the promise in force, if any

    @property
    def offered(self) -> bool:
        return self.days > 0 and self.used_period is None and bool(self.restorable)


def subscriber_offer(uow: UnitOfWork, *, customer_id: int, now: datetime) -> SubscriberOffer:
    """Read-only: may the customer promise to pay now, for how long, and what it restores."""
    customer = uow.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id, field="customer")
    policy = load_policy(uow, klass=customer.customer_class)
    period = _billing_period_start(customer, local_date(now, customer.billing_timezone))
    suspended, throttled = _restorable(uow, customer)
    until = customer.promise_until
    return SubscriberOffer(
        days=policy.subscriber_promise_days,
        used_period=period if _promised_in(customer, period) else None,
        restorable=frozenset(s.id for s in suspended + throttled),
        until=until if until is not None and until > now else None,
    )


def _restorable(uow: UnitOfWork, customer: Customer) -> tuple[list[Service], list[Service]]:
    """What a promise restores: collections' own suspensions (not an operator's) and
    throttles."""
    own = list(
        uow.session.scalars(
            select(Service).where(Service.customer_id == customer.id).order_by(Service.id)
        )
    )
    suspended = [
        s
        for s in own
        if s.state == ServiceState.SUSPENDED.value
        and s.state_reason == SuspensionReason.NON_PAYER.value
        and current_manual(uow, s.id) is None
    ]
    return suspended, [s for s in own if s.throttle_down_kbps is not None]


def _reactivate(
    uow: UnitOfWork, row: Service, *, now: datetime, actor: str, figures: dict[str, object]
) -> None:
    access_changes.move_service(
        uow,
        row,
        to=ServiceState.ACTIVE.value,
        reason=None,
        now=now,
        actor=actor,
        event_reason="promise_to_pay",
        figures={"lifted": SuspensionReason.NON_PAYER.value, **figures},
    )


def _unthrottle(
    uow: UnitOfWork, row: Service, *, now: datetime, actor: str, figures: dict[str, object]
) -> None:
    """Full speed for the promise; the CoA command tells the network."""
    down, up = row.throttle_down_kbps, row.throttle_up_kbps
    row.throttle_down_kbps = None
    row.throttle_up_kbps = None
    access_changes.enqueue(
        uow,
        events.record(
            uow,
            now=now,
            actor=actor,
            kind=ServiceEvent.UNTHROTTLED.value,
            subject_type="service",
            subject_id=row.id,
            customer_id=row.customer_id,
            reason="promise_to_pay",
            figures={"down_kbps": down, "up_kbps": up, **figures},
        ),
    )


def _billing_period_start(customer: Customer, today: date) -> date:
    cycle = instantiate_cycle(
        CycleKind(customer.cycle_kind),
        customer.cycle_n,
        customer.cycle_origin,
        anchor_day=customer.cycle_anchor_day,
    )
    return period_containing(cycle, today).start


def profile_names(uow: UnitOfWork) -> dict[str, str]:
    """Every manual reason with the name the operator gave it."""
    operator = settings_store.load(uow)
    return {reason: operator.reason_name(reason) for reason in MANUAL_REASONS}
