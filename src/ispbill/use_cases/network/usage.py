"""Data usage per service per billing period, and the FUP tier actions it triggers.

ISPadmin seed (tariffs): up to four data limits per billing period, each reducing the speed or
suspending the service. Usage arrives from RADIUS accounting (``use_cases/network/radius_requests.py``) or by hand
(``ispbill usage add``); both call ``add_usage``. The period is the service's own billing period
in the customer's timezone (the engine's cycle, ``services/billing.service_cycle``), so limits
reset exactly when the service's period turns over. The decision is pure
(``domain/fup.decide_fup``); here it is stored: the usage row's tier and throttle speed (what
authorize reads), the event, and for a suspend tier the service's state. Events go through
``events.record``, which writes the outbox command that carries the change to live sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.billing_snapshots import service_cycle
from ispbill.adapters.db.models import Customer, Plan, Service, UsageRecord, table_of
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import Period, local_date, period_containing
from ispbill.domain.errors import ValidationError
from ispbill.domain.fup import FupStep, decide_fup, throttle_for
from ispbill.domain.lifecycle import ServiceEvent, ServiceState, SuspensionReason, check_transition
from ispbill.domain.plans import MAX_DATA_BYTES, FupAction, FupTier, Speed
from ispbill.use_cases.network import access_changes

RESET_BATCH = 500


@dataclass(frozen=True)
class UsageResult:
    service_id: int
    period: Period
    bytes_total: int
    tier: int
    step: FupStep | None


def add_usage(
    uow: UnitOfWork,
    *,
    service_id: int,
    used_bytes: int,
    at: datetime,
    now: datetime,
    actor: str,
) -> UsageResult:
    """Add ``used_bytes`` to the service's usage in the period containing ``at`` and apply a
    newly reached FUP tier; in the caller's unit of work (the caller commits)."""
    if not 0 <= used_bytes <= MAX_DATA_BYTES:
        raise ValidationError("bytes", f"must be between 0 and {MAX_DATA_BYTES}")
    session = uow.session
    service = session.get(Service, service_id)
    if service is None:
        raise ValidationError("service", f"no service {service_id}")
    customer = session.get(Customer, service.customer_id)
    plan = session.get(Plan, service.plan_id)
    assert customer is not None  # a foreign key
    assert plan is not None
    zone = customer.billing_timezone
    period = period_containing(service_cycle(service, customer, plan), local_date(at, zone))
    record_id, total, applied = _upsert(uow, service_id, period, zone, used_bytes, now)
    tiers = tiers_of(plan)
    step = decide_fup(tiers, total, applied)
    if step is not None and _claim_tier(uow, record_id, step.tier.tier, tiers, now):
        _apply_step(uow, service, step, period, now=now, actor=actor)
        applied = step.tier.tier
    return UsageResult(service_id, period, total, applied, step)


def tiers_of(plan: Plan) -> tuple[FupTier, ...]:
    return tuple(
        FupTier(
            tier=t.tier,
            limit_bytes=t.limit_bytes,
            action=FupAction(t.action),
            speed=Speed(t.down_kbps, t.up_kbps) if t.down_kbps and t.up_kbps else None,
        )
        for t in plan.fup_tiers
    )


def usage_of(uow: UnitOfWork, service_id: int) -> list[UsageRecord]:
    return list(
        uow.session.scalars(
            select(UsageRecord)
            .where(UsageRecord.service_id == service_id)
            .order_by(UsageRecord.period_start.desc())
        )
    )


def reset_finished_periods(uow: UnitOfWork, *, now: datetime, actor: str) -> int:
    """Lift what the FUP tiers of a finished period imposed: a throttle (event
    ``service.fup_reset``, a CoA follows) or a ``fup`` suspension (the service is active again).
    Each usage row is reset once, even by several processes at once; returns how many were."""
    uow.begin_write()
    session = uow.session
    due = (
        select(UsageRecord)
        .where(
            UsageRecord.tier > 0,
            UsageRecord.reset_done.is_(False),
            UsageRecord.period_ends_at <= now,
        )
        .order_by(UsageRecord.period_ends_at, UsageRecord.id)
        .limit(RESET_BATCH)
    )
    if uow.dialect == "postgresql":
        # several processes may reset at once: each takes the rows no other holds, and a row
        # another reset committed meanwhile is re-checked (reset_done) and left out; SQLite
        # serialises the writers (BEGIN IMMEDIATE)
        due = due.with_for_update(skip_locked=True)
    rows = list(session.scalars(due))
    for row in rows:
        row.reset_done = True
        row.updated_at = now
        service = session.get(Service, row.service_id)
        if service is None or _current_tier(uow, service.id, now) > 0:
            continue
        figures = {"period_start": row.period_start.isoformat(), "used_bytes": row.bytes_total}
        if (
            service.state == ServiceState.SUSPENDED.value
            and service.state_reason == SuspensionReason.FUP.value
        ):
            check_transition(ServiceState.SUSPENDED, ServiceState.ACTIVE)
            service.state = ServiceState.ACTIVE.value
            service.state_reason = None
            service.state_since = now
            _event(uow, service, ServiceEvent.ACTIVE.value, "fup_reset", now, actor, figures)
        elif row.throttle_down_kbps is not None:
            _event(
                uow,
                service,
                ServiceEvent.FUP_RESET.value,
                "new billing period",
                now,
                actor,
                figures,
            )
    uow.commit()
    return len(rows)


def current_throttle(uow: UnitOfWork, service_id: int, now: datetime) -> Speed | None:
    row = uow.session.execute(
        select(UsageRecord.throttle_down_kbps, UsageRecord.throttle_up_kbps).where(
            UsageRecord.service_id == service_id,
            UsageRecord.period_starts_at <= now,
            UsageRecord.period_ends_at > now,
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return Speed(row[0], row[1])


def _current_tier(uow: UnitOfWork, service_id: int, now: datetime) -> int:
    tier = uow.session.scalar(
        select(UsageRecord.tier).where(
            UsageRecord.service_id == service_id,
            UsageRecord.period_starts_at <= now,
            UsageRecord.period_ends_at > now,
        )
    )
    return tier or 0


def _upsert(
    uow: UnitOfWork, service_id: int, period: Period, zone: str, used_bytes: int, now: datetime
) -> tuple[int, int, int]:
    """Add to the period's row atomically (concurrent accounting packets never lose bytes)."""
    table = table_of(UsageRecord)
    values = {
        "service_id": service_id,
        "period_start": period.start,
        "period_end": period.end,
        "period_starts_at": period.start_instant(zone),
        "period_ends_at": period.end_instant(zone),
        "bytes_total": used_bytes,
        "tier": 0,
        "reset_done": False,
        "updated_at": now,
    }
    dialect = postgresql if uow.dialect == "postgresql" else sqlite
    statement = dialect.insert(table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["service_id", "period_start"],
        set_={"bytes_total": table.c.bytes_total + used_bytes, "updated_at": now},
    ).returning(table.c.id, table.c.bytes_total, table.c.tier)
    row = uow.session.execute(statement).one()
    return int(row[0]), int(row[1]), int(row[2])


def _claim_tier(
    uow: UnitOfWork, record_id: int, tier: int, tiers: tuple[FupTier, ...], now: datetime
) -> bool:
    """Raise the row's tier only if no concurrent packet already did: one event per tier."""
    speed = throttle_for(tiers, tier)
    result = uow.session.execute(
        update(UsageRecord)
        .where(UsageRecord.id == record_id, UsageRecord.tier < tier)
        .values(
            tier=tier,
            throttle_down_kbps=speed.down_kbps if speed else None,
            throttle_up_kbps=speed.up_kbps if speed else None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _apply_step(
    uow: UnitOfWork, service: Service, step: FupStep, period: Period, *, now: datetime, actor: str
) -> None:
    tier = step.tier
    figures = {
        "tier": tier.tier,
        "limit_bytes": tier.limit_bytes,
        "used_bytes": step.used_bytes,
        "period_start": period.start.isoformat(),
        "action": tier.action.value,
    }
    if not step.suspends:
        assert tier.speed is not None  # a throttle tier has a speed (FupTier)
        figures |= {"down_kbps": tier.speed.down_kbps, "up_kbps": tier.speed.up_kbps}
        _event(
            uow,
            service,
            ServiceEvent.FUP_THROTTLED.value,
            f"FUP tier {tier.tier}",
            now,
            actor,
            figures,
        )
        return
    if service.state != ServiceState.ACTIVE.value:
        return  # not on the network now; the tier is recorded and holds for the period
    check_transition(ServiceState.ACTIVE, ServiceState.SUSPENDED)
    service.state = ServiceState.SUSPENDED.value
    service.state_reason = SuspensionReason.FUP.value
    service.state_since = now
    _event(
        uow, service, ServiceEvent.SUSPENDED.value, SuspensionReason.FUP.value, now, actor, figures
    )


def _event(
    uow: UnitOfWork,
    service: Service,
    kind: str,
    reason: str,
    now: datetime,
    actor: str,
    figures: dict[str, object],
) -> None:
    """Record the FUP move and let the network follow (a CoA command, a fresh answer)."""
    event = events.record(
        uow,
        now=now,
        actor=actor,
        kind=kind,
        subject_type="service",
        subject_id=service.id,
        customer_id=service.customer_id,
        reason=reason,
        figures=figures,
    )
    access_changes.enqueue(uow, event)
