"""Importing bank statements: incoming transfers become payments, once, for the right customer.

Every line of the file is stored in ``bank_statement_lines`` under its stable name (the bank's
transaction id qualified by the account, or a hash; see ``domain/bank.py``), so importing the
same file again finds every line and creates nothing. A credit is matched to a customer by, in
this order, the first rule that finds exactly one:

1. a reference equal to the customer's ``variable_symbol`` custom-data field,
2. a reference equal to the ``customer_number`` custom-data field,
3. the payer's IBAN equal to the ``iban`` custom-data field (spaces and case ignored),
4. a numeric reference equal to the customer id.

A matched credit goes through ``post_payment`` (method bank_transfer, reference the line's
name), so it is allocated to open invoices and re-evaluates the customer like any payment, and
the line and its payment commit together. A credit the rules cannot place, or that the payment
use case refuses (a currency the wallet is not in), is stored ``unmatched`` with the reason, for
``assign_line``. Debits are stored ``ignored``. Each line is its own unit of work, so a long
file never holds a customer's lock for more than one payment.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ispbill.adapters.bank import ColumnMap, read_statement
from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import BankStatementLine, Customer
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.bank import LineStatus, StatementLine, normalize_iban, reference_candidates
from ispbill.domain.errors import Conflict, NotFound, ValidationError
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.use_cases.payments.recording import NewPayment, Recorded, post_payment

METHOD = PaymentMethod.BANK_TRANSFER.value
MATCH_FIELDS = ("variable_symbol", "customer_number")


@dataclass(frozen=True)
class Match:
    customer_id: int | None
    reason: str


@dataclass
class ImportReport:
    file_name: str
    file_hash: str
    format: str
    rows_read: int = 0
    payments_created: int = 0
    duplicates_skipped: int = 0
    unmatched: int = 0
    ignored: int = 0
    unmatched_line_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "file_hash": self.file_hash,
            "format": self.format,
            "rows_read": self.rows_read,
            "payments_created": self.payments_created,
            "duplicates_skipped": self.duplicates_skipped,
            "unmatched": self.unmatched,
            "ignored": self.ignored,
            "unmatched_line_ids": self.unmatched_line_ids,
        }


def import_statement(
    uow_factory: Callable[[], UnitOfWork],
    *,
    data: bytes,
    file_name: str,
    now: datetime,
    actor: str,
    format: str = "auto",
    column_map: ColumnMap | None = None,
) -> ImportReport:
    """Read the whole file first (a bad file writes nothing), then store it line by line."""
    kind, lines = read_statement(data, format=format, column_map=column_map)
    report = ImportReport(
        file_name=file_name, file_hash=hashlib.sha256(data).hexdigest(), format=kind.value
    )
    report.rows_read = len(lines)
    with uow_factory() as uow:
        known = _known_lines(uow.session, [line.external_id for line in lines])
        matches = match_lines(uow.session, [line for line in lines if line.is_credit])
    seen: set[str] = set()
    for line in lines:
        if line.external_id in known or line.external_id in seen:
            report.duplicates_skipped += 1
            continue
        seen.add(line.external_id)
        with uow_factory() as uow:
            _store_line(uow, line, matches.get(line.index), report, now=now, actor=actor)
    with uow_factory() as uow:
        uow.begin_write()
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="bank_statement.imported",
            subject_type="bank_statement",
            subject_id=0,
            reason=file_name,
            figures=report.as_dict(),
        )
        uow.commit()
    return report


def _store_line(
    uow: UnitOfWork,
    line: StatementLine,
    match: Match | None,
    report: ImportReport,
    *,
    now: datetime,
    actor: str,
) -> None:
    row = _row(line, report, now=now, actor=actor)
    recorded: Recorded | None = None
    if not line.is_credit:
        row.status = LineStatus.IGNORED.value
        row.reason = "debit: money going out is not a payment" if line.amount.minor else "zero"
    elif match is None or match.customer_id is None:
        row.status = LineStatus.UNMATCHED.value
        row.reason = match.reason if match else "no reference to match"
    else:
        row.customer_id = match.customer_id
        try:
            recorded = post_payment(
                uow, spec=_payment_spec(line, match.customer_id, now), now=now, actor=actor
            )
        except (ValidationError, NotFound) as exc:
            uow.session.rollback()  # refused before writing; store the line alone
            row.status = LineStatus.UNMATCHED.value
            row.reason = f"{match.reason}, refused: {exc}"[:300]
        else:
            row.status = LineStatus.MATCHED.value
            row.reason = match.reason
            row.payment_id = recorded.payment.id
            row.resolved_at = now
    if recorded is None:
        uow.begin_write()
    uow.session.add(row)
    try:
        uow.commit()
    except IntegrityError:  # another import stored this line first
        uow.session.rollback()
        report.duplicates_skipped += 1
        return
    if row.status == LineStatus.IGNORED.value:
        report.ignored += 1
    elif row.status == LineStatus.UNMATCHED.value:
        report.unmatched += 1
        report.unmatched_line_ids.append(row.id)
    elif recorded is not None and recorded.created:
        report.payments_created += 1
    else:
        report.duplicates_skipped += 1  # the payment was recorded before, by hand or by an API


def _row(
    line: StatementLine, report: ImportReport, *, now: datetime, actor: str
) -> BankStatementLine:
    return BankStatementLine(
        external_id=line.external_id,
        file_hash=report.file_hash,
        file_name=report.file_name[-255:],
        format=report.format,
        line_index=line.index,
        account=line.account[:64] if line.account else None,
        booked_on=line.booked_on,
        amount_minor=line.amount.minor,
        currency=line.amount.currency,
        reference=line.reference[:140] if line.reference else None,
        counterparty_iban=line.counterparty_iban[:64] if line.counterparty_iban else None,
        counterparty_name=line.counterparty_name[:200] if line.counterparty_name else None,
        bank_transaction_id=line.bank_transaction_id[:140] if line.bank_transaction_id else None,
        description=line.description,
        raw=dict(line.raw),
        status=LineStatus.UNMATCHED.value,
        reason="",
        imported_at=now,
        actor=actor,
    )


def _payment_spec(line: StatementLine, customer_id: int, now: datetime) -> NewPayment:
    booked = datetime.combine(line.booked_on, time(0), tzinfo=UTC)
    return NewPayment(
        customer_id=customer_id,
        amount=line.amount,
        method=METHOD,
        reference=line.external_id,
        idempotency_key=f"bank:{line.external_id}",
        received_at=min(booked, now),
    )


def _known_lines(session: Session, external_ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(external_ids), 500):
        chunk = list(external_ids[start : start + 500])
        known.update(
            session.scalars(
                select(BankStatementLine.external_id).where(
                    BankStatementLine.external_id.in_(chunk)
                )
            )
        )
    return known


def match_lines(session: Session, lines: Sequence[StatementLine]) -> dict[int, Match]:
    """The customer of each line (by ``line.index``), with a few set-based queries."""
    candidates = {line.index: reference_candidates(line) for line in lines}
    every_reference = sorted({c for cs in candidates.values() for c in cs})
    ibans = sorted(
        {normalize_iban(line.counterparty_iban) for line in lines if line.counterparty_iban}
    )
    by_field = {name: _by_custom_field(session, name, every_reference) for name in MATCH_FIELDS}
    by_iban = _by_iban(session, ibans)
    numeric = sorted({int(c) for c in every_reference if c.isdigit() and 0 < int(c) <= MAX_ID})
    by_id = _by_id(session, numeric)
    matches: dict[int, Match] = {}
    for line in lines:
        refs = candidates[line.index]
        iban = normalize_iban(line.counterparty_iban) if line.counterparty_iban else None
        rules: list[tuple[str, set[int]]] = [
            *(
                (f"{name} {ref}", by_field[name].get(ref, set()))
                for name in MATCH_FIELDS
                for ref in refs
            ),
            (f"iban {iban}", by_iban.get(iban, set()) if iban else set()),
            *(
                (f"customer id {ref}", by_id.get(int(ref), set()))
                for ref in refs
                if ref.isdigit() and 0 < int(ref) <= MAX_ID
            ),
        ]
        matches[line.index] = _first_match(rules)
    return matches


def _first_match(rules: Iterable[tuple[str, set[int]]]) -> Match:
    for rule, found in rules:
        if len(found) == 1:
            return Match(next(iter(found)), f"matched by {rule}")
        if len(found) > 1:
            ids = ", ".join(str(i) for i in sorted(found))
            return Match(None, f"ambiguous: {rule} fits customers {ids}")
    return Match(None, "no customer has this reference or IBAN")


def _by_custom_field(session: Session, name: str, values: Sequence[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    if not values:
        return found
    column = Customer.custom_data[name].as_string()
    for customer_id, value in session.execute(
        select(Customer.id, column).where(column.in_(list(values)))
    ):
        found[str(value)].add(int(customer_id))
    return found


def _by_iban(session: Session, ibans: Sequence[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    if not ibans:
        return found
    stored = func.upper(
        func.replace(func.replace(Customer.custom_data["iban"].as_string(), " ", ""), "-", "")
    )
    for customer_id, value in session.execute(
        select(Customer.id, stored).where(stored.in_(list(ibans)))
    ):
        found[str(value)].add(int(customer_id))
    return found


def _by_id(session: Session, ids: Sequence[int]) -> dict[int, set[int]]:
    if not ids:
        return {}
    return {
        int(i): {int(i)}
        for i in session.scalars(select(Customer.id).where(Customer.id.in_(list(ids))))
    }


# --- manual assignment ------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    line: BankStatementLine
    recorded: Recorded


def assign_line(
    uow: UnitOfWork, *, line_id: int, customer_id: int, now: datetime, actor: str
) -> Assigned:
    """Post the payment of one unmatched credit for the customer the operator chose."""
    session = uow.session
    found = session.get(BankStatementLine, line_id)
    if found is None:
        raise NotFound("bank statement line", line_id, field="line")
    _check_assignable(found)
    line = StatementLine(
        index=found.line_index,
        booked_on=found.booked_on,
        amount=Money(found.amount_minor, found.currency),
        account=found.account,
    )
    external_id = found.external_id
    session.rollback()  # reads done; the write starts under the customer's lock
    spec = _payment_spec(line, customer_id, now)
    spec = NewPayment(
        customer_id=customer_id,
        amount=spec.amount,
        method=METHOD,
        reference=external_id,
        idempotency_key=f"bank:{external_id}",
        received_at=spec.received_at,
    )
    recorded = post_payment(uow, spec=spec, now=now, actor=actor)
    row = session.get(BankStatementLine, line_id, with_for_update=True, populate_existing=True)
    assert row is not None
    _check_assignable(row)  # an operator assigning the same line at the same time
    row.status = LineStatus.MATCHED.value
    row.customer_id = recorded.payment.customer_id
    row.payment_id = recorded.payment.id
    row.resolved_at = now
    row.reason = f"assigned by {actor}"
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="bank_statement.line_assigned",
        subject_type="bank_statement_line",
        subject_id=row.id,
        customer_id=row.customer_id,
        reason=external_id,
        figures={"payment": recorded.payment.id, "amount": str(line.amount)},
    )
    uow.commit()
    return Assigned(row, recorded)


def _check_assignable(line: BankStatementLine) -> None:
    if line.status == LineStatus.IGNORED.value:
        raise ValidationError("line", f"line {line.id} is a debit (money going out), not a payment")
    if line.status == LineStatus.MATCHED.value:
        raise Conflict("line", f"line {line.id} is already matched to payment {line.payment_id}")


def unmatched_lines(uow: UnitOfWork, *, limit: int = 500) -> list[BankStatementLine]:
    return list(
        uow.session.scalars(
            select(BankStatementLine)
            .where(BankStatementLine.status == LineStatus.UNMATCHED.value)
            .order_by(BankStatementLine.booked_on, BankStatementLine.id)
            .limit(limit)
        )
    )
