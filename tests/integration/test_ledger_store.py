"""The stored ledger: exactly-once posting, reversals, append-only tables, cached balances that
provably equal their postings, on both databases (and under concurrency on PostgreSQL)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import Customer, LedgerAccount, LedgerPosting, LedgerTransaction
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, LedgerError, NotFound
from ispbill.domain.ledger import AccountKind, AccountRef, Entry, EntryKind, Posting, transfer
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog.customer_accounts import NewCustomer
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of
from ispbill.use_cases.catalog.offerings import NewClass, add_class

USD = "USD"
CASH = AccountRef.system(AccountKind.CASH, USD)
REVENUE = AccountRef.system(AccountKind.REVENUE, USD)


def make_customers(app: App, count: int) -> list[AccountRef]:
    """``count`` USD customers without funds; their wallets."""
    now = app.clock.now()
    with app.uow() as uow:
        add_class(uow, spec=NewClass(name="Plain"), now=now, actor="test")
    wallets = []
    for n in range(count):
        with app.uow() as uow:
            row = customer_cases.add_customer(
                uow,
                spec=NewCustomer(
                    name=f"Customer {n}",
                    customer_class_id=customer_class_id_of(uow, "Plain"),
                    currency=USD,
                ),
                now=now,
                actor="test",
            )
        wallets.append(AccountRef.wallet(row.id, USD))
    return wallets


def usd(minor: int) -> Money:
    return Money(minor, USD)


def pay(app: App, key: str, wallet: AccountRef, minor: int, source: AccountRef = CASH) -> Entry:
    return transfer(
        key=key,
        kind=EntryKind.PAYMENT,
        debit=source,
        credit=wallet,
        amount=usd(minor),
        effective_at=app.clock.now(),
        customer_id=wallet.customer_id,
    )


def post(app: App, entry: Entry) -> ledger.Posted:
    with app.uow() as uow:
        posted = ledger.post(uow, entry, now=app.clock.now())
        uow.commit()
    return posted


def balances(app: App) -> dict[str, int]:
    with app.uow() as uow:
        rows = uow.session.execute(select(LedgerAccount.code, LedgerAccount.balance_minor))
        return {code: int(value) for code, value in rows}


def posted_sums(app: App) -> dict[str, int]:
    """Each account's balance recomputed from its postings, independently of ``check``."""
    with app.uow() as uow:
        rows = uow.session.execute(
            select(LedgerAccount.code, func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
            .outerjoin(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
            .group_by(LedgerAccount.code)
        )
        return {code: int(value) for code, value in rows}


def transactions(app: App) -> int:
    with app.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0


def assert_books_balance(app: App) -> None:
    with app.uow() as uow:
        assert ledger.check(uow.session) == []
    assert balances(app) == posted_sums(app)


def test_transfer_moves_balances_once_per_key(app: App) -> None:
    [wallet] = make_customers(app, 1)
    first = post(app, pay(app, "payment:1", wallet, 5000))
    assert first.created
    assert balances(app)[wallet.code] == 5000
    assert balances(app)[CASH.code] == -5000
    assert_books_balance(app)

    # the same key and movement again is the first transaction
    again = post(app, pay(app, "payment:1", wallet, 5000))
    assert not again.created
    assert again.transaction.id == first.transaction.id
    # the same key for another amount is refused: no money is said to have moved
    with pytest.raises(Conflict, match="idempotency_key: 'payment:1' already names"):
        post(app, pay(app, "payment:1", wallet, 7000))
    assert balances(app)[wallet.code] == 5000
    assert transactions(app) == 1
    assert_books_balance(app)


def test_reverse_links_an_opposite_transaction_once(app: App) -> None:
    [wallet] = make_customers(app, 1)
    original = post(app, pay(app, "payment:1", wallet, 1234)).transaction
    app.clock.advance(timedelta(hours=1))
    with app.uow() as uow:
        reversal = ledger.reverse(
            uow, original_key="payment:1", key="reverse:1", now=app.clock.now()
        )
        uow.commit()
    assert reversal.created
    row = reversal.transaction
    assert row.reverses_id == original.id
    assert row.kind == EntryKind.REVERSAL.value
    assert row.effective_at == app.clock.now()
    with app.uow() as uow:
        amounts = uow.session.execute(
            select(LedgerAccount.code, LedgerPosting.amount_minor)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerPosting.transaction_id == row.id)
        ).all()
    assert sorted(amounts) == sorted([(CASH.code, 1234), (wallet.code, -1234)])
    assert balances(app)[wallet.code] == 0
    assert balances(app)[CASH.code] == 0
    assert_books_balance(app)

    with app.uow() as uow:
        second = ledger.reverse(uow, original_key="payment:1", key="reverse:2", now=app.clock.now())
        uow.commit()
    assert not second.created
    assert second.transaction.id == row.id
    assert transactions(app) == 2
    assert balances(app)[wallet.code] == 0
    assert_books_balance(app)


def test_reverse_of_an_unknown_key_is_refused(app: App) -> None:
    with app.uow() as uow, pytest.raises(NotFound) as excinfo:
        ledger.reverse(uow, original_key="nope", key="reverse:nope", now=app.clock.now())
    assert excinfo.value.field == "transaction"
    assert transactions(app) == 0


def test_opening_funds_are_a_posting_not_a_balance_edit(app: App) -> None:
    now = app.clock.now()
    with app.uow() as uow:
        add_class(uow, spec=NewClass(name="Plain"), now=now, actor="test")
    with app.uow() as uow:
        row = customer_cases.add_customer(
            uow,
            spec=NewCustomer(
                name="Funded",
                customer_class_id=customer_class_id_of(uow, "Plain"),
                currency=USD,
                available_funds="12.34",
            ),
            now=now,
            actor="test",
        )
    code = AccountRef.wallet(row.id, USD).code
    assert balances(app)[code] == 1234
    assert posted_sums(app)[code] == 1234
    with app.uow() as uow:
        stored = ledger.find_transaction(uow.session, f"opening-funds:{row.id}")
        assert stored is not None
        assert stored.kind == EntryKind.OPENING_FUNDS.value
    assert_books_balance(app)


APPEND_ONLY = [
    "UPDATE ledger_postings SET amount_minor = amount_minor + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_transactions SET memo = 'edited'",
    "DELETE FROM ledger_transactions",
]


@pytest.mark.parametrize("statement", APPEND_ONLY, ids=lambda s: s.split(" SET")[0])
def test_the_database_refuses_edits_to_the_ledger(app: App, statement: str) -> None:
    [wallet] = make_customers(app, 1)
    post(app, pay(app, "payment:1", wallet, 100))
    before = (transactions(app), posted_sums(app))
    with app.uow() as uow, pytest.raises(DBAPIError, match="append-only"):
        uow.session.execute(text(statement))
    assert (transactions(app), posted_sums(app)) == before
    assert_books_balance(app)


def test_a_tampered_cached_balance_is_detected(app: App, database_url: str) -> None:
    wallets = make_customers(app, 2)
    post(app, pay(app, "payment:1", wallets[0], 500))
    assert_books_balance(app)
    with app.uow() as uow:
        uow.session.execute(
            text("UPDATE ledger_accounts SET balance_minor = balance_minor + 1 WHERE code = :c"),
            {"c": wallets[0].code},
        )
        uow.commit()
    with app.uow() as uow:
        findings = ledger.check(uow.session)
    assert [(f.subject, f.expected_minor, f.actual_minor) for f in findings] == [
        (f"account {wallets[0].code} cached balance", 500, 501)
    ]
    with app.uow() as uow, pytest.raises(LedgerError, match=wallets[0].code):
        ledger.require_balanced(uow.session)

    result = CliRunner().invoke(cli, ["--database-url", database_url, "ledger", "check"])
    assert result.exit_code == 1, result.output
    assert f"account {wallets[0].code} cached balance: expected 500, found 501" in result.stdout


def test_an_unbalanced_stored_transaction_is_detected(app: App) -> None:
    """Postings written around ``post`` (a bug elsewhere) are caught by the check."""
    [wallet] = make_customers(app, 1)
    post(app, pay(app, "payment:1", wallet, 100))
    with app.uow() as uow:
        tx = ledger.find_transaction(uow.session, "payment:1")
        assert tx is not None
        account = uow.session.scalars(
            select(LedgerAccount).where(LedgerAccount.code == wallet.code)
        ).one()
        uow.session.add(
            LedgerPosting(transaction_id=tx.id, account_id=account.id, amount_minor=1, currency=USD)
        )
        uow.commit()
    with app.uow() as uow:
        subjects = [f.subject for f in ledger.check(uow.session)]
    assert f"transaction {tx.id} in USD" in subjects
    assert f"account {wallet.code} cached balance" in subjects


def existing_wallets(app: App) -> list[AccountRef]:
    """The fixture's database lives across hypothesis examples: create the wallets once."""
    with app.uow() as uow:
        ids = list(uow.session.scalars(select(Customer.id).order_by(Customer.id)))
    if not ids:
        return make_customers(app, 3)
    return [AccountRef.wallet(customer_id, USD) for customer_id in ids]


# -- property: any sequence of transfers keeps every cached balance equal to its postings ------

ACCOUNT_COUNT = 5  # three wallets, cash and revenue
transfers = st.lists(
    st.tuples(
        st.integers(0, ACCOUNT_COUNT - 1),
        st.integers(0, ACCOUNT_COUNT - 1),
        st.integers(1, 1_000_000),
        st.sampled_from(["post", "post twice", "post and reverse"]),
    ).filter(lambda t: t[0] != t[1]),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=transfers)
def test_cached_balances_always_equal_their_postings(
    app: App, steps: list[tuple[int, int, int, str]]
) -> None:
    accounts = [*existing_wallets(app), CASH, REVENUE]
    start = balances(app)
    expected: Counter[str] = Counter({code: value for code, value in start.items()})
    for debit, credit, minor, how in steps:
        key = f"p:{uuid.uuid4().hex}"
        entry = transfer(
            key=key,
            kind=EntryKind.ADJUSTMENT,
            debit=accounts[debit],
            credit=accounts[credit],
            amount=usd(minor),
            effective_at=app.clock.now(),
        )
        assert post(app, entry).created
        expected[accounts[debit].code] -= minor
        expected[accounts[credit].code] += minor
        if how == "post twice":
            assert not post(app, entry).created
        if how == "post and reverse":
            with app.uow() as uow:
                ledger.reverse(uow, original_key=key, key=f"r:{key}", now=app.clock.now())
                uow.commit()
            expected[accounts[debit].code] += minor
            expected[accounts[credit].code] -= minor
    cached = balances(app)
    assert cached == posted_sums(app)
    assert cached == {code: expected[code] for code in cached}
    assert set(expected) <= set(cached)
    assert sum(cached.values()) == 0
    with app.uow() as uow:
        assert ledger.check(uow.session) == []


# -- concurrency: PostgreSQL row locks keep balances exact and keys unique ----------------------


@pytest.mark.postgres_only
def test_concurrent_posters_keep_balances_exact_and_keys_unique(app: App) -> None:
    [wallet] = make_customers(app, 1)
    post(app, pay(app, "warm-up", wallet, 1))  # the accounts exist before the race
    writers, per_writer, racers = 10, 20, 5
    barrier = threading.Barrier(writers + racers)
    errors: list[BaseException] = []
    created: list[bool] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                post(app, pay(app, f"w:{n}:{i}", wallet, n * 100 + i + 1))
        except BaseException as exc:
            errors.append(exc)

    def racer() -> None:
        try:
            barrier.wait()
            created.append(post(app, pay(app, "same-key", wallet, 777_777)).created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    threads += [threading.Thread(target=racer) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    expected = 1 + 777_777 + sum(n * 100 + i + 1 for n in range(writers) for i in range(per_writer))
    assert balances(app)[wallet.code] == expected
    assert balances(app)[CASH.code] == -expected
    assert sorted(created) == [False] * (racers - 1) + [True]
    with app.uow() as uow:
        same = uow.session.scalar(
            select(func.count())
            .select_from(LedgerTransaction)
            .where(LedgerTransaction.idempotency_key == "same-key")
        )
    assert same == 1
    assert transactions(app) == 1 + writers * per_writer + 1
    assert_books_balance(app)


def test_posting_entry_rules_hold_before_storage(app: App) -> None:
    """The store only ever receives balanced, non-zero, single-currency-per-account entries."""
    [wallet] = make_customers(app, 1)
    with pytest.raises(LedgerError, match="does not sum to zero"):
        Entry(
            key="bad",
            kind=EntryKind.ADJUSTMENT,
            effective_at=app.clock.now(),
            postings=(Posting(CASH, usd(-100)), Posting(wallet, usd(99))),
        )
    assert transactions(app) == 0
