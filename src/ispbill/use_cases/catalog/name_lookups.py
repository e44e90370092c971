"""What an operator types, as the id a use case takes: the lookups of the command line's edge.

Use cases take ids (``int``); people type a customer's name or its id, a plan's name, a
payment's external reference. The CLI turns that text into an id here, before it calls the use
case, each refusal naming the field. The API and the web console hold ids already (a path, a
form's hidden field) and do not come here.

Each lookup reads in the unit of work it is given. A lookup that opens the unit of work's
transaction ends it again, so that a use case called after it in the same unit of work still
opens its own transaction (on SQLite, a writer's ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db.lookups import MAX_ID, by_id_or_name
from ispbill.adapters.db.models import (
    Customer,
    CustomerClass,
    Payment,
    Plan,
    Reseller,
    Service,
    TaxProfileRow,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import NotFound, ValidationError


def customer_id_of(uow: UnitOfWork, text: str, *, field: str = "customer") -> int:
    """A customer's id, from its id or its exact name."""
    with _read(uow) as session:
        return int(by_id_or_name(session, Customer, text, field=field).id)


def plan_id_of(uow: UnitOfWork, text: str, *, field: str = "plan") -> int:
    with _read(uow) as session:
        return int(by_id_or_name(session, Plan, text, field=field).id)


def customer_class_id_of(uow: UnitOfWork, text: str, *, field: str = "customer_class") -> int:
    with _read(uow) as session:
        return int(by_id_or_name(session, CustomerClass, text, field=field).id)


def reseller_id_of(uow: UnitOfWork, text: str, *, field: str = "reseller") -> int:
    with _read(uow) as session:
        return int(by_id_or_name(session, Reseller, text, field=field).id)


def tax_profile_id_of(uow: UnitOfWork, text: str, *, field: str = "tax_profile") -> int:
    with _read(uow) as session:
        return int(by_id_or_name(session, TaxProfileRow, text, field=field).id)


def service_id_of(uow: UnitOfWork, text: str, *, field: str = "service") -> int:
    """A service's id: services have no name, so the text must be the id."""
    value = numeric_id(text)
    if value is None:
        raise ValidationError(field, f"{text!r}: give the service id (a number)")
    with _read(uow) as session:
        if not 0 < value <= MAX_ID or session.get(Service, value) is None:
            raise NotFound("service", text, field=field)
    return value


def payment_id_of(
    uow: UnitOfWork, text: str, *, customer_id: int | None = None, field: str = "payment"
) -> int:
    """A payment's id, from its id or its external reference (of ``customer_id``'s payments
    only, when given: references repeat across payers). Text that reads as both an id and
    another payment's reference is refused: it names several payments."""
    with _read(uow):
        wanted = text.strip()
        query = select(Payment.id).where(Payment.reference == wanted)
        if customer_id is not None:
            query = query.where(Payment.customer_id == customer_id)
        found = set(uow.session.scalars(query))
        value = numeric_id(wanted)
        if value is not None and 0 < value <= MAX_ID:
            by_id = uow.session.get(Payment, value)
            if by_id is not None and (customer_id is None or by_id.customer_id == customer_id):
                found.add(by_id.id)
            elif by_id is not None and not found:
                raise ValidationError(
                    field, f"payment {by_id.id} is not {_owner(uow, customer_id)}'s"
                )
        if not found:
            raise NotFound("payment", wanted, field=field)
        if len(found) > 1:
            ids = ", ".join(str(i) for i in sorted(found))
            whose = "" if customer_id is None else f" of {_owner(uow, customer_id)}'s"
            raise ValidationError(
                field, f"{wanted!r} names several{whose} payments ({ids}); give the id"
            )
        return found.pop()


def _owner(uow: UnitOfWork, customer_id: int | None) -> str:
    row = uow.session.get(Customer, customer_id) if customer_id is not None else None
    return repr(row.name) if row is not None else f"customer {customer_id}"


def numeric_id(text: str) -> int | None:
    """``text`` as an id when it is written as one (ASCII digits), else None."""
    stripped = text.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() else None


@contextmanager
def _read(uow: UnitOfWork) -> Iterator[Session]:
    """The unit of work's session; a transaction the lookup opened is ended when it is done."""
    opened = not uow.session.in_transaction()
    try:
        yield uow.session
    finally:
        if opened:
            uow.session.rollback()
