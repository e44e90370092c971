"""Read models of the console's catalogue pages and of the single rows a page or a form checks
before it acts: customer classes, resellers, plans, tax profiles, refill-card batches, bank
statement lines; a customer, service, payment, notification or staff user by id.

Reads only, one query each. The rows are the stored ones; a page shows them and never changes
them (writes go through the use cases).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import (
    BankStatementLine,
    Customer,
    CustomerClass,
    Notification,
    Payment,
    Plan,
    RefillCardBatch,
    Reseller,
    Service,
    StaffUser,
    TaxProfileRow,
)
from ispbill.domain.lifecycle import ServiceState

# -- one row by id (None when there is none) -----------------------------------------------------


def customer(session: Session, customer_id: int) -> Customer | None:
    return session.get(Customer, customer_id)


def service(session: Session, service_id: int) -> Service | None:
    return session.get(Service, service_id)


def payment(session: Session, payment_id: int) -> Payment | None:
    return session.get(Payment, payment_id)


def notification(session: Session, notification_id: int) -> Notification | None:
    return session.get(Notification, notification_id)


def staff_user(session: Session, staff_id: int) -> StaffUser | None:
    return session.get(StaffUser, staff_id)


# -- catalogue lists ----------------------------------------------------------------------------


def classes(session: Session, *, by_name: bool = False) -> list[CustomerClass]:
    """Customer classes by id (the classes page) or by name (a form's choice)."""
    order = CustomerClass.name if by_name else CustomerClass.id
    return list(session.scalars(select(CustomerClass).order_by(order)))


def resellers(
    session: Session, *, only: int | None = None, by_name: bool = False
) -> list[Reseller]:
    """Resellers by id or by name; ``only`` keeps one reseller (its own user sees only its
    own, never the others' names)."""
    query = select(Reseller).order_by(Reseller.name if by_name else Reseller.id)
    if only is not None:
        query = query.where(Reseller.id == only)
    return list(session.scalars(query))


def reseller_names(session: Session) -> dict[int, str]:
    return {r.id: r.name for r in session.scalars(select(Reseller))}


def plans(session: Session, *, archived: bool | None = None) -> list[Plan]:
    """Plans by id; ``archived`` True keeps only the archived ones, False only the others."""
    query = select(Plan).order_by(Plan.id)
    if archived is not None:
        query = query.where(
            Plan.archived_at.is_not(None) if archived else Plan.archived_at.is_(None)
        )
    return list(session.scalars(query))


def plan(session: Session, plan_id: int) -> Plan | None:
    return session.get(Plan, plan_id) if 0 < plan_id <= MAX_ID else None


def open_services_on_plan(session: Session, plan_id: int) -> int:
    """How many services on the plan have not ended (what its archive confirmation states)."""
    query = select(func.count(Service.id)).where(
        Service.plan_id == plan_id, Service.state != ServiceState.ENDED.value
    )
    return int(session.scalar(query) or 0)


def customer_class(session: Session, class_id: int) -> CustomerClass | None:
    return session.get(CustomerClass, class_id) if 0 < class_id <= MAX_ID else None


def tax_profile(session: Session, tax_profile_id: int) -> TaxProfileRow | None:
    return session.get(TaxProfileRow, tax_profile_id) if 0 < tax_profile_id <= MAX_ID else None


def tax_profiles(session: Session) -> list[TaxProfileRow]:
    return list(session.scalars(select(TaxProfileRow).order_by(TaxProfileRow.id)))


def card_batches(session: Session) -> list[RefillCardBatch]:
    """Refill-card batches, newest first."""
    return list(session.scalars(select(RefillCardBatch).order_by(RefillCardBatch.id.desc())))


def bank_lines(
    session: Session, *, status: str | None, after: int, limit: int | None
) -> list[BankStatementLine]:
    """Bank statement lines of one status (every status for None), oldest first from the
    id ``after``, at most ``limit`` (all for None)."""
    query = select(BankStatementLine).where(BankStatementLine.id > after)
    if status:
        query = query.where(BankStatementLine.status == status)
    query = query.order_by(BankStatementLine.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
