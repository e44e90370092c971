"""Storing ledger entries exactly once, and proving the books balance.

``post`` writes an entry's transaction and postings and moves the cached balances of the touched
accounts in the same database transaction, with a single relative UPDATE per account so
concurrent posters never lose an update. The idempotency key is unique in the database: posting
the same key again returns the first transaction instead of a second one, even when two posters
race (the loser's insert fails inside a SAVEPOINT and it reads the winner's row).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ispbill.adapters.db import bulk
from ispbill.adapters.db.models import LedgerAccount, LedgerPosting, LedgerTransaction, table_of
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import Conflict, LedgerError, NotFound
from ispbill.domain.ledger import (
    AccountKind,
    AccountRef,
    Discrepancy,
    Entry,
    EntryKind,
    Posting,
    compare_balances,
    reversal,
)
from ispbill.domain.money import Money


@dataclass(frozen=True)
class Posted:
    transaction: LedgerTransaction
    created: bool


def ensure_accounts(
    session: Session, refs: Iterable[AccountRef], *, now: datetime
) -> dict[AccountRef, LedgerAccount]:
    """Fetch the accounts, creating missing ones race-free (insert ... on conflict do nothing)."""
    wanted = {ref.code: ref for ref in refs}
    found = _accounts_by_code(session, wanted)
    missing = [ref for code, ref in wanted.items() if code not in found]
    if missing:
        rows = [
            {
                "code": ref.code,
                "kind": ref.kind.value,
                "currency": ref.currency,
                "customer_id": ref.customer_id,
                "balance_minor": 0,
                "created_at": now,
            }
            for ref in missing
        ]
        dialect_insert = (
            pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        session.execute(dialect_insert(LedgerAccount).on_conflict_do_nothing(), rows)
        found = _accounts_by_code(session, wanted)
    return {ref: found[code] for code, ref in wanted.items()}


def _accounts_by_code(session: Session, wanted: dict[str, AccountRef]) -> dict[str, LedgerAccount]:
    rows = session.scalars(select(LedgerAccount).where(LedgerAccount.code.in_(list(wanted))))
    return {row.code: row for row in rows}


def find_transaction(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).one_or_none()


def post(uow: UnitOfWork, entry: Entry, *, now: datetime) -> Posted:
    """Store ``entry`` once; a second post of the same key and the same movement returns the
    first transaction, a different movement under that key is refused."""
    session = uow.session
    existing = find_transaction(session, entry.key)
    if existing is not None:
        return Posted(_same_entry(existing, entry), created=False)
    accounts = ensure_accounts(session, (p.account for p in entry.postings), now=now)
    reverses_id = None
    if entry.reverses_key is not None:
        original = find_transaction(session, entry.reverses_key)
        if original is None:
            raise NotFound("transaction", entry.reverses_key, field="reverses")
        reverses_id = original.id
    try:
        with session.begin_nested():
            row = _insert_entry(uow, entry, accounts, reverses_id=reverses_id, now=now)
    except IntegrityError:
        winner = find_transaction(session, entry.key)
        if winner is None:
            raise
        return Posted(_same_entry(winner, entry), created=False)
    return Posted(row, created=True)


def _same_entry(stored: LedgerTransaction, entry: Entry) -> LedgerTransaction:
    """The stored transaction, when it moved the same money as ``entry``; a key reused for a
    different movement is refused (TigerBeetle's ``exists_with_different_*``), since
    returning the first transaction would tell the caller its money moved when it did not."""
    wanted = sorted((p.account.code, p.amount.currency, p.amount.minor) for p in entry.postings)
    moved = sorted((p.account.code, p.currency, p.amount_minor) for p in stored.postings)
    if stored.kind != entry.kind.value or moved != wanted:
        raise Conflict(
            "idempotency_key",
            f"{entry.key!r} already names transaction {stored.id}, which moved other money",
        )
    return stored


def _insert_entry(
    uow: UnitOfWork,
    entry: Entry,
    accounts: dict[AccountRef, LedgerAccount],
    *,
    reverses_id: int | None,
    now: datetime,
) -> LedgerTransaction:
    session = uow.session
    row = LedgerTransaction(
        idempotency_key=entry.key,
        kind=entry.kind.value,
        memo=entry.memo,
        customer_id=entry.customer_id,
        reverses_id=reverses_id,
        figures=dict(entry.figures),
        recorded_at=now,
        effective_at=entry.effective_at,
    )
    session.add(row)
    session.flush()
    deltas: dict[int, int] = {}
    for posting in entry.postings:
        account = accounts[posting.account]
        session.add(
            LedgerPosting(
                transaction_id=row.id,
                account_id=account.id,
                amount_minor=posting.amount.minor,
                currency=posting.amount.currency,
            )
        )
        deltas[account.id] = deltas.get(account.id, 0) + posting.amount.minor
    session.flush()
    system = {accounts[p.account].id for p in entry.postings if p.account.customer_id is None}
    if defer_system_balances(uow, [row.id]):
        deltas = {a: d for a, d in deltas.items() if a not in system}
    for account_id in sorted(deltas):  # fixed order: concurrent posters cannot deadlock
        session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == account_id)
            .values(balance_minor=LedgerAccount.balance_minor + deltas[account_id])
        )
    return row


# Where a unit of work keeps the transactions whose system-account balances move at commit.
_DEFERRED = "ispbill.ledger.deferred_transactions"


def defer_system_balances(uow: UnitOfWork, transaction_ids: Iterable[int]) -> bool:
    """On PostgreSQL, move the system accounts' cached balances (revenue, tax, cash, bank...)
    for these transactions as the unit of work's last write, not now; returns whether it will.

    Every payment, charge and refund of a currency touches the same few system rows: updated
    when posted, their row locks were held through the rest of the use case (the customer's
    re-evaluation, invoices, events), so all payments of a currency ran one after another.
    Moved last, each holds them only for the instant before its commit. The amounts come from
    the postings still there at commit, so a savepoint rolled back (one customer of the tick
    skipped, a lost idempotency race) moves nothing. On SQLite writers are serialised by the
    database lock anyway: the balances move at once there."""
    if uow.dialect != "postgresql":
        return False
    pending: set[int] = uow.session.info.setdefault(_DEFERRED, set())
    pending.update(transaction_ids)
    # after the invoice numbers (invoice_store): a use case that numbers an invoice at once
    # holds its counter before it reaches the balances too
    uow.last_step(_DEFERRED, _move_system_balances, order=20)
    return True


def _move_system_balances(uow: UnitOfWork) -> None:
    pending: set[int] = uow.session.info.pop(_DEFERRED, set())
    if not pending:
        return
    ids = sorted(pending)
    wanted = func.unnest(literal(ids, type_=ARRAY(BigInteger))).table_valued("id").render_derived()
    deltas = uow.session.execute(
        select(LedgerPosting.account_id, func.sum(LedgerPosting.amount_minor))
        .join(wanted, wanted.c.id == LedgerPosting.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.customer_id.is_(None))
        .group_by(LedgerPosting.account_id)
    ).all()
    for account_id, delta in sorted(deltas):  # id order: concurrent committers cannot deadlock
        if delta:
            uow.session.execute(
                update(LedgerAccount)
                .where(LedgerAccount.id == account_id)
                .values(balance_minor=LedgerAccount.balance_minor + int(delta))
            )


def entry_of(row: LedgerTransaction) -> Entry:
    """Rebuild the domain entry of a stored transaction (for reversals and statements)."""
    postings = tuple(
        Posting(
            AccountRef(AccountKind(p.account.kind), p.currency, p.account.customer_id),
            Money(p.amount_minor, p.currency),
        )
        for p in row.postings
    )
    return Entry(
        key=row.idempotency_key,
        kind=EntryKind(row.kind),
        effective_at=row.effective_at,
        postings=postings,
        memo=row.memo,
        customer_id=row.customer_id,
    )


def reverse(
    uow: UnitOfWork, *, original_key: str, key: str, now: datetime, memo: str = ""
) -> Posted:
    """Undo a stored transaction with a new, linked, opposite one (never an edit)."""
    original = find_transaction(uow.session, original_key)
    if original is None:
        raise NotFound("transaction", original_key, field="transaction")
    already = uow.session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.reverses_id == original.id)
    ).one_or_none()
    if already is not None:
        return Posted(already, created=False)
    return post(uow, reversal(entry_of(original), key=key, effective_at=now, memo=memo), now=now)


def check(session: Session) -> list[Discrepancy]:
    """Every transaction sums to zero per currency; every cached balance equals its postings."""
    findings: list[Discrepancy] = []
    unbalanced = session.execute(
        select(
            LedgerPosting.transaction_id,
            LedgerPosting.currency,
            func.sum(LedgerPosting.amount_minor),
        )
        .group_by(LedgerPosting.transaction_id, LedgerPosting.currency)
        .having(func.sum(LedgerPosting.amount_minor) != 0)
    )
    for transaction_id, currency, total in unbalanced:
        findings.append(Discrepancy(f"transaction {transaction_id} in {currency}", 0, int(total)))
    mismatched = session.execute(
        select(LedgerAccount.code, LedgerPosting.currency)
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerPosting.currency != LedgerAccount.currency)
        .distinct()
    )
    for code, currency in mismatched:
        findings.append(Discrepancy(f"account {code} has a posting in {currency}", 0, 1))
    posted = dict(
        session.execute(
            select(LedgerAccount.code, func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
            .outerjoin(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
            .group_by(LedgerAccount.code)
        ).all()
    )
    cached = dict(session.execute(select(LedgerAccount.code, LedgerAccount.balance_minor)).all())
    findings.extend(compare_balances(cached, {k: int(v) for k, v in posted.items()}))
    return findings


def require_balanced(session: Session) -> None:
    findings = check(session)
    if findings:
        raise LedgerError("; ".join(f.describe() for f in findings))


def wallet_balance(session: Session, customer_id: int, currency: str) -> Money:
    return wallet_balances(session, [(customer_id, currency)])[customer_id]


def wallet_balances(session: Session, customers: Iterable[tuple[int, str]]) -> dict[int, Money]:
    """Balances of many wallets in one query (listings must not query per row)."""
    wanted = {AccountRef.wallet(cid, currency).code: (cid, currency) for cid, currency in customers}
    found = dict(
        session.execute(
            select(LedgerAccount.code, LedgerAccount.balance_minor).where(
                LedgerAccount.code.in_(list(wanted))
            )
        ).all()
    )
    return {cid: Money(found.get(code, 0), currency) for code, (cid, currency) in wanted.items()}


def post_batch(
    session: Session,
    entries: list[Entry],
    *,
    now: datetime,
    known: dict[AccountRef, int] | None = None,
    uow: UnitOfWork | None = None,
) -> dict[str, int]:
    """Store many entries with a few set-based statements; returns key -> transaction id.

    ``known`` maps accounts the caller already loaded (the chunk's wallets) to their ids, so
    only the few system accounts are looked up. Used by the tick, whose callers hold the
    customers' row locks: a duplicate key here means another writer raced the lock, and the
    unique constraint makes the whole chunk roll back. Given the ``uow`` that will commit,
    the system accounts' balances move at its commit (``defer_system_balances``).
    """
    if not entries:
        return {}
    ids_by_ref = dict(known or {})
    missing = {p.account for e in entries for p in e.postings} - ids_by_ref.keys()
    ids_by_ref.update(
        {ref: row.id for ref, row in ensure_accounts(session, missing, now=now).items()}
    )
    connection = session.connection()
    transaction_ids = bulk.allocate_ids(connection, table_of(LedgerTransaction), len(entries))
    bulk.insert_rows(
        connection,
        table_of(LedgerTransaction),
        [
            {
                "id": transaction_id,
                "idempotency_key": e.key,
                "kind": e.kind.value,
                "memo": e.memo,
                "customer_id": e.customer_id,
                "reverses_id": None,
                "figures": dict(e.figures),
                "recorded_at": now,
                "effective_at": e.effective_at,
            }
            for e, transaction_id in zip(entries, transaction_ids, strict=True)
        ],
    )
    postings = []
    deltas: dict[int, int] = {}
    for entry, transaction_id in zip(entries, transaction_ids, strict=True):
        for posting in entry.postings:
            account_id = ids_by_ref[posting.account]
            postings.append(
                {
                    "transaction_id": transaction_id,
                    "account_id": account_id,
                    "amount_minor": posting.amount.minor,
                    "currency": posting.amount.currency,
                }
            )
            deltas[account_id] = deltas.get(account_id, 0) + posting.amount.minor
    bulk.insert_rows(connection, table_of(LedgerPosting), postings)
    if uow is not None and defer_system_balances(uow, transaction_ids):
        system = {aid for ref, aid in ids_by_ref.items() if ref.customer_id is None}
        deltas = {a: d for a, d in deltas.items() if a not in system}
    bulk.add_to_balances(connection, table_of(LedgerAccount), deltas)
    return {e.key: tid for e, tid in zip(entries, transaction_ids, strict=True)}


def apply_deltas(session: Session, deltas: dict[int, int]) -> None:
    """Move cached balances relatively, in account id order (no lost updates, no deadlocks)."""
    bulk.add_to_balances(session.connection(), table_of(LedgerAccount), deltas)
