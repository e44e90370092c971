"""Payments on both databases: credited exactly once, applied oldest invoice first, refused in a
foreign currency, reversed and refunded by new linked transactions, and immediate in effect.

After every test the books are checked (``check_books``: the ledger balances, every wallet
equals its documents, every invoice's paid amount equals its standing allocations).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import (
    Allocation,
    Charge,
    Event,
    Invoice,
    LedgerAccount,
    LedgerTransaction,
    Payment,
)
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.ledger import AccountKind, AccountRef, EntryKind, transfer
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.catalog.name_lookups import customer_id_of, payment_id_of
from ispbill.use_cases.payments.corrections import Refunded, refund, reverse_payment
from ispbill.use_cases.payments.recording import (
    NewPayment,
    Recorded,
    post_payment,
    record_payment,
)
from scenarios.helpers import (
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    check_books,
    invoices,
    set_setting,
    state,
    tick,
    wallet,
)

T0 = at(2026, 1, 1, 9)
ACTOR = "test"


@pytest.fixture
def app(app: App) -> Iterator[App]:
    """The shared ``app``; after every scenario, on every database, the books must agree."""
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    yield app
    check_books(app)


def pay(app: App, customer: int, amount: str, *, now: Any = None, **spec: Any) -> Recorded:
    with app.uow() as uow:
        return record_payment(
            uow,
            spec=NewPayment(customer_id=customer, amount=amount, **spec),
            now=now or at(2026, 1, 5, 12),
            actor=ACTOR,
        )


def counts(app: App) -> dict[str, int]:
    with app.uow() as uow:
        return {
            model.__tablename__: uow.session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Payment, LedgerTransaction, Allocation, Event)
        }


def postpaid(app: App, name: str, **terms: Any) -> tuple[int, int]:
    """A forward-invoiced postpaid customer with a 30.00 monthly service from January 1."""
    customer = add_customer(app, T0, name, balance_control="postpaid", **terms)
    service = add_service(app, T0, customer, "Home 30", active_from=date(2026, 1, 1))
    return customer, service


def allocation_rows(app: App, customer: int) -> list[tuple[str, int, int | None, bool]]:
    """(invoice issue date, amount, payment id, reversed) of every allocation, oldest first."""
    with app.uow() as uow:
        rows = uow.session.execute(
            select(
                Invoice.issue_date,
                Allocation.amount_minor,
                Allocation.payment_id,
                Allocation.reversed_at,
            )
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Invoice.customer_id == customer)
            .order_by(Allocation.id)
        )
        return [(d.isoformat(), amount, pid, rev is not None) for d, amount, pid, rev in rows]


# --- exactly once -----------------------------------------------------------------------------


def test_the_same_key_twice_credits_once(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    first = pay(app, ann, "20.00", idempotency_key="till-7/0001")
    again = pay(app, ann, "20.00", idempotency_key="till-7/0001")
    assert (first.created, again.created) == (True, False)
    assert again.payment.id == first.payment.id
    assert wallet(app, ann) == 20_00
    assert counts(app)["payments"] == 1


def test_the_same_reference_and_amount_twice_credits_once(app: App) -> None:
    """A bank reference replayed (a re-sent webhook, an operator typing it twice) with the
    same figures, under no key or another key, gives the first payment back."""
    ann = add_customer(app, T0, "Ann")
    first = pay(app, ann, "20.00", method="bank_transfer", reference="BANK-2026-001")
    again = pay(app, ann, "20.00", method="bank_transfer", reference="BANK-2026-001")
    keyed = pay(
        app, ann, "20.00", method="bank_transfer", reference="BANK-2026-001", idempotency_key="k"
    )
    assert (first.created, again.created, keyed.created) == (True, False, False)
    assert again.payment.id == keyed.payment.id == first.payment.id
    assert wallet(app, ann) == 20_00
    with app.uow() as uow:
        kinds = uow.session.scalars(select(LedgerTransaction.kind)).all()
    assert kinds.count("payment") == 1


def test_the_same_reference_with_another_amount_is_refused(app: App) -> None:
    """The same customer, method and reference with other figures is a typo or a replay with
    altered figures: refused naming the reference, never answered with the first payment."""
    ann = add_customer(app, T0, "Ann")
    first = pay(app, ann, "20.00", method="bank_transfer", reference="BANK-2026-001")
    before = counts(app)
    for key in (None, "another-key"):
        with pytest.raises(Conflict) as refused:
            pay(
                app,
                ann,
                "25.00",
                method="bank_transfer",
                reference="BANK-2026-001",
                idempotency_key=key,
            )
        assert refused.value.field == "reference"
        assert f"payment {first.payment.id} of 20.00 USD" in refused.value.rule
    assert counts(app) == before
    assert wallet(app, ann) == 20_00
    # the same reference under another method is another payment
    cash = pay(app, ann, "25.00", method="cash", reference="BANK-2026-001")
    assert cash.created is True
    assert wallet(app, ann) == 45_00


def test_another_customers_reference_is_their_own_payment(app: App) -> None:
    """References repeat across payers in real bank data: a reference another customer's
    payment carries is a new payment, credited to the payer named, with its own figures."""
    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    first = pay(app, ann, "11.00", reference="RCPT-1")
    second = pay(app, bob, "22.00", reference="RCPT-1")
    same = pay(app, bob, "11.00", reference="RCPT-1", method="bank_transfer")
    assert (first.created, second.created, same.created) == (True, True, True)
    assert second.payment.id != first.payment.id
    assert (second.payment.customer_id, second.payment.amount_minor) == (bob, 22_00)
    assert (wallet(app, ann), wallet(app, bob)) == (11_00, 33_00)
    assert pay(app, bob, "22.00", reference="RCPT-1").payment.id == second.payment.id
    assert wallet(app, bob) == 33_00


def test_a_key_used_for_other_figures_is_refused(app: App) -> None:
    """An idempotency key names one payment: reused for another customer or amount it is
    refused, and the other customer's payment is not given back."""
    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    pay(app, ann, "20.00", idempotency_key="till-7/0001")
    before = counts(app)
    for customer, amount in ((bob, "20.00"), (ann, "21.00")):
        with pytest.raises(Conflict) as refused:
            pay(app, customer, amount, idempotency_key="till-7/0001")
        assert refused.value.field == "idempotency_key"
    assert counts(app) == before
    assert (wallet(app, ann), wallet(app, bob)) == (20_00, 0)


def test_a_payment_in_another_currency_is_refused_and_nothing_is_written(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    before = counts(app)
    with pytest.raises(ValidationError) as refused:
        pay(app, ann, "20.00", currency="EUR", reference="EUR-1")
    assert refused.value.field == "currency"
    assert "EUR" in refused.value.rule
    assert "USD" in refused.value.rule
    assert counts(app) == before
    assert wallet(app, ann) == 0


def test_operator_defined_methods_post_through_their_account(app: App) -> None:
    set_setting(app, T0, "payment_methods", "cheque=bank, mpesa=gateway_clearing")
    ann = add_customer(app, T0, "Ann")
    pay(app, ann, "12.00", method="cheque", reference="CHQ-0042")
    pay(app, ann, "3.00", method="mpesa", reference="QK7H2X")
    with app.uow() as uow:
        rows = uow.session.execute(select(LedgerAccount.code, LedgerAccount.balance_minor))
        balances = {code: int(value) for code, value in rows}
    assert (balances["bank:USD"], balances["gateway_clearing:USD"]) == (-12_00, -3_00)
    with pytest.raises(ValidationError) as unknown:
        pay(app, ann, "1.00", method="paypal", reference="P-1")
    assert unknown.value.field == "method"
    assert "cheque" in unknown.value.rule
    with pytest.raises(ValidationError) as bad:
        set_setting(app, T0, "payment_methods", "voucher=revenue")
    assert bad.value.field == "payment_methods.voucher"
    with pytest.raises(ValidationError) as builtin:
        set_setting(app, T0, "payment_methods", "cash=bank")
    assert builtin.value.field == "payment_methods.cash"


# --- allocation, reversal, refund -------------------------------------------------------------


def three_open_invoices(app: App) -> int:
    uma, _ = postpaid(app, "Uma")
    for month in (1, 2, 3):
        tick(app, at(2026, month, 1, 6))
    assert [(i.gross, i.paid, i.status) for i in invoices(app, uma)] == [(30_00, 0, "issued")] * 3
    return uma


def test_a_payment_pays_the_oldest_invoices_first_and_the_rest_becomes_credit(app: App) -> None:
    uma = three_open_invoices(app)
    first = pay(app, uma, "75.00", reference="P-75", now=at(2026, 3, 5, 10))
    assert str(first.applied) == "75.00 USD"
    assert [(i.paid, i.status) for i in invoices(app, uma)] == [
        (30_00, "paid"),
        (30_00, "paid"),
        (15_00, "partially_paid"),
    ]
    second = pay(app, uma, "40.00", reference="P-40", now=at(2026, 3, 6, 10))
    assert str(second.applied) == "15.00 USD"  # the rest, 25.00, is credit
    assert allocation_rows(app, uma) == [
        ("2026-01-01", 30_00, first.payment.id, False),
        ("2026-02-01", 30_00, first.payment.id, False),
        ("2026-03-01", 15_00, first.payment.id, False),
        ("2026-03-01", 15_00, second.payment.id, False),
    ]
    assert wallet(app, uma) == 25_00
    assert [i.status for i in invoices(app, uma)] == ["paid"] * 3


def test_a_reversal_restores_balances_and_invoice_statuses_and_is_linked(app: App) -> None:
    uma = three_open_invoices(app)
    first = pay(app, uma, "75.00", reference="P-75", now=at(2026, 3, 5, 10))
    second = pay(app, uma, "40.00", reference="P-40", now=at(2026, 3, 6, 10))

    with app.uow() as uow:
        done = reverse_payment(
            uow,
            payment_id=payment_id_of(uow, "P-40"),
            reason="bounced",
            now=at(2026, 3, 7, 9),
            actor=ACTOR,
        )
    assert done.created
    assert done.invoices_reopened == [invoices_number(app, uma, 2)]
    assert wallet(app, uma) == -15_00
    assert [(i.paid, i.status) for i in invoices(app, uma)] == [
        (30_00, "paid"),
        (30_00, "paid"),
        (15_00, "partially_paid"),
    ]
    with app.uow() as uow:
        payment = uow.session.get(Payment, second.payment.id)
        assert payment is not None
        assert payment.reversed_by_id == done.transaction.id
        reversal = uow.session.get(LedgerTransaction, done.transaction.id)
        assert reversal is not None
        assert (reversal.kind, reversal.reverses_id) == ("reversal", second.payment.transaction_id)
        assert reversal.idempotency_key == f"payment-reversal:{second.payment.id}"
        [reversed_event] = uow.session.scalars(
            select(Event).where(Event.kind == "payment.reversed")
        ).all()
        assert (reversed_event.subject_id, reversed_event.reason) == (second.payment.id, "bounced")

    with app.uow() as uow:  # once: a second reversal returns the first
        again = reverse_payment(
            uow, payment_id=second.payment.id, reason="again", now=at(2026, 3, 8), actor=ACTOR
        )
    assert (again.created, again.transaction.id) == (False, done.transaction.id)

    with app.uow() as uow:
        reverse_payment(
            uow, payment_id=first.payment.id, reason="charge-back", now=at(2026, 3, 9), actor=ACTOR
        )
    assert wallet(app, uma) == -90_00
    assert [(i.paid, i.status) for i in invoices(app, uma)] == [(0, "issued")] * 3
    assert all(rev for *_, rev in allocation_rows(app, uma))
    # paying the reversed reference again gives the reversed payment back: never a new credit
    assert pay(app, uma, "40.00", reference="P-40").created is False


def invoices_number(app: App, customer: int, position: int) -> str:
    with app.uow() as uow:
        numbers = uow.session.scalars(
            select(Invoice.number).where(Invoice.customer_id == customer).order_by(Invoice.id)
        ).all()
    return numbers[position]


def test_reversing_a_payment_whose_credit_paid_a_later_invoice_reopens_that_invoice(
    app: App,
) -> None:
    """60.00 pays January and leaves 30.00 of credit that pays February when it is issued.
    Reversing the payment takes back money February was paid with: both invoices reopen."""
    vic, _ = postpaid(app, "Vic")
    tick(app, at(2026, 1, 1, 6))
    pay(app, vic, "60.00", reference="P-60", now=at(2026, 1, 3))
    tick(app, at(2026, 2, 1, 6))
    assert [(i.paid, i.status) for i in invoices(app, vic)] == [(30_00, "paid")] * 2
    with app.uow() as uow:
        reverse_payment(
            uow,
            payment_id=payment_id_of(uow, "P-60"),
            reason="bounced",
            now=at(2026, 2, 3),
            actor=ACTOR,
        )
    assert wallet(app, vic) == -60_00
    assert [(i.paid, i.status) for i in invoices(app, vic)] == [(0, "issued")] * 2


def test_a_reversal_that_reaches_the_credit_limit_blocks_the_customer_at_once(app: App) -> None:
    lee, home = postpaid(app, "Lee", credit_limit="50.00")
    tick(app, at(2026, 1, 1, 6))
    pay(app, lee, "30.00", reference="P-30", now=at(2026, 1, 3))
    tick(app, at(2026, 2, 1, 6))
    assert (state(app, home), wallet(app, lee)) == (("active", None), -30_00)
    with app.uow() as uow:
        reverse_payment(
            uow,
            payment_id=payment_id_of(uow, "P-30"),
            reason="bounced",
            now=at(2026, 2, 3),
            actor=ACTOR,
        )
    # committed with the reversal: the fresh unit of work sees the block
    assert (state(app, home), wallet(app, lee)) == (("suspended", "credit_limit"), -60_00)


def test_a_refund_pays_back_credit_once_and_never_more_than_the_credit(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    paid = pay(app, ann, "50.00", reference="P-50")

    def give_back(amount: str, reference: str, payment: str | None = None) -> Any:
        with app.uow() as uow:
            return refund(
                uow,
                customer_id=ann,
                amount=amount,
                method="cash",
                reference=reference,
                now=at(2026, 1, 6),
                actor=ACTOR,
                payment_id=payment_id_of(uow, payment, customer_id=ann) if payment else None,
            )

    done = give_back("20.00", "R-1", payment="P-50")
    assert done.created
    assert wallet(app, ann) == 30_00
    assert give_back("20.00", "R-1").created is False
    assert wallet(app, ann) == 30_00
    with pytest.raises(ValidationError) as over:
        give_back("30.01", "R-2")
    assert over.value.field == "amount"
    assert "30.00 USD" in over.value.rule
    pay(app, ann, "100.00", reference="P-100")
    with pytest.raises(ValidationError) as beyond_payment:
        give_back("30.01", "R-3", payment=str(paid.payment.id))  # 30.00 left of that payment
    assert beyond_payment.value.field == "amount"
    with app.uow() as uow:
        transaction = uow.session.get(LedgerTransaction, done.transaction.id)
        assert transaction is not None
        assert (transaction.kind, transaction.figures["payment_id"]) == (
            "refund",
            str(paid.payment.id),
        )


def give_back(
    app: App,
    customer: int,
    amount: str,
    reference: str,
    method: str = "cash",
    payment: str | None = None,
) -> Refunded:
    """A cash refund of ``customer``'s credit under ``reference``, naming a payment by its id
    or reference as the CLI does (``payments refund --payment``)."""
    with app.uow() as uow:
        return refund(
            uow,
            customer_id=customer,
            amount=amount,
            method=method,
            reference=reference,
            now=at(2026, 1, 6),
            actor=ACTOR,
            payment_id=payment_id_of(uow, payment, customer_id=customer) if payment else None,
        )


def test_another_customers_refund_reference_is_their_own_refund(app: App) -> None:
    """A refund reference is the customer's: Bob's refund under the reference Ann's refund
    carries is made (Bob's money goes back), never answered with Ann's refund."""
    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    pay(app, ann, "50.00", reference="P-A")
    pay(app, bob, "40.00", reference="P-B")
    first = give_back(app, ann, "20.00", "R-1")
    theirs = give_back(app, bob, "15.00", "R-1")
    assert (first.created, theirs.created) == (True, True)
    assert theirs.transaction.id != first.transaction.id
    assert theirs.transaction.customer_id == bob
    assert theirs.amount.minor == 15_00
    assert (wallet(app, ann), wallet(app, bob)) == (30_00, 25_00)
    again = give_back(app, bob, "15.00", "R-1")
    assert (again.created, again.transaction.id) == (False, theirs.transaction.id)
    assert give_back(app, ann, "20.00", "R-1").transaction.id == first.transaction.id
    assert (wallet(app, ann), wallet(app, bob)) == (30_00, 25_00)
    with app.uow() as uow:
        kinds = uow.session.scalars(select(LedgerTransaction.kind)).all()
    assert kinds.count("refund") == 2


def test_the_same_refund_reference_with_other_figures_is_refused(app: App) -> None:
    """The same customer, method and refund reference with another amount, or naming another
    payment, is refused naming the reference; nothing is paid. Another method is another
    refund."""
    ann = add_customer(app, T0, "Ann")
    p50 = pay(app, ann, "50.00", reference="P-50").payment.id
    p20 = pay(app, ann, "20.00", reference="P-20").payment.id
    first = give_back(app, ann, "10.00", "R-1", payment=str(p50))
    before = counts(app)
    with pytest.raises(Conflict) as altered:
        give_back(app, ann, "12.00", "R-1")
    assert altered.value.field == "reference"
    assert f"transaction {first.transaction.id} of 10.00 USD" in altered.value.rule
    with pytest.raises(Conflict) as other_payment:
        give_back(app, ann, "10.00", "R-1", payment=str(p20))
    assert other_payment.value.field == "reference"
    assert counts(app) == before
    assert wallet(app, ann) == 60_00
    same = give_back(app, ann, "10.00", "R-1", payment="P-50")
    assert (same.created, same.transaction.id) == (False, first.transaction.id)
    by_bank = give_back(app, ann, "12.00", "R-1", method="bank_transfer")
    assert by_bank.created is True
    assert wallet(app, ann) == 48_00


def test_a_refund_stored_under_the_old_key_is_found_for_its_customer_only(app: App) -> None:
    """Refunds recorded before references became the customer's carry the key
    ``refund:<method>:<reference>``: still the same refund for that customer, and no obstacle
    for another customer's refund under the same reference."""
    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    pay(app, ann, "50.00", reference="P-A")
    pay(app, bob, "40.00", reference="P-B")
    with app.uow() as uow:  # Ann's refund as the earlier release posted it
        old = ledger.post(
            uow,
            transfer(
                key="refund:cash:R-1",
                kind=EntryKind.REFUND,
                debit=AccountRef.wallet(ann, "USD"),
                credit=AccountRef.system(AccountKind.CASH, "USD"),
                amount=Money(20_00, "USD"),
                effective_at=at(2026, 1, 6),
                memo="cash refund R-1",
                customer_id=ann,
                figures={"method": "cash", "reference": "R-1"},
            ),
            now=at(2026, 1, 6),
        )
        uow.commit()
    again = give_back(app, ann, "20.00", "R-1")
    assert (again.created, again.transaction.id) == (False, old.transaction.id)
    assert again.amount.minor == 20_00
    with pytest.raises(Conflict) as altered:
        give_back(app, ann, "21.00", "R-1")
    assert altered.value.field == "reference"
    theirs = give_back(app, bob, "15.00", "R-1")
    assert theirs.created is True
    assert theirs.transaction.customer_id == bob
    assert (wallet(app, ann), wallet(app, bob)) == (30_00, 25_00)


def test_a_refund_names_a_payment_among_the_customers_own(app: App) -> None:
    """Payment references repeat across payers: a refund naming ``P-1`` means the customer's
    own ``P-1``; another customer's payment is never matched, by reference or by id."""
    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    pay(app, ann, "50.00", reference="P-1")
    bobs = pay(app, bob, "40.00", reference="P-1").payment.id
    pay(app, ann, "5.00", reference=str(bobs))  # Ann's receipt number is Bob's payment id
    done = give_back(app, bob, "10.00", "R-1", payment="P-1")
    assert done.transaction.figures["payment_id"] == str(bobs)
    by_id = give_back(app, bob, "5.00", "R-2", payment=str(bobs))
    assert by_id.transaction.figures["payment_id"] == str(bobs)
    with pytest.raises(ValidationError) as crossed:
        give_back(
            app, ann, "1.00", "R-3", payment=str(pay(app, bob, "1.00", reference="P-2").payment.id)
        )
    assert crossed.value.field == "payment"
    assert (wallet(app, ann), wallet(app, bob)) == (55_00, 26_00)


def test_money_that_pays_an_open_invoice_is_not_refundable(app: App) -> None:
    uma, _ = postpaid(app, "Uma")
    tick(app, at(2026, 1, 1, 6))
    pay(app, uma, "30.00", reference="P-30", now=at(2026, 1, 2))
    with app.uow() as uow, pytest.raises(ValidationError) as refused:
        refund(
            uow,
            customer_id=customer_id_of(uow, "Uma"),
            amount="0.01",
            method="bank_transfer",
            reference="R-1",
            now=at(2026, 1, 3),
            actor=ACTOR,
        )
    assert refused.value.field == "amount"
    assert "0.00 USD" in refused.value.rule


def test_a_reversed_payment_cannot_be_refunded(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    pay(app, ann, "50.00", reference="P-50")
    pay(app, ann, "50.00", reference="P-51")
    with app.uow() as uow:
        reverse_payment(
            uow, payment_id=payment_id_of(uow, "P-50"), reason="wrong customer", now=T0, actor=ACTOR
        )
    with app.uow() as uow, pytest.raises(Conflict):
        refund(
            uow,
            customer_id=ann,
            amount="5.00",
            method="cash",
            reference="R-9",
            payment_id=payment_id_of(uow, "P-50", customer_id=ann),
            now=at(2026, 1, 6),
            actor=ACTOR,
        )


# --- immediate effect -------------------------------------------------------------------------


def test_a_payment_reactivates_a_deactivated_prepaid_service_in_its_own_transaction(
    app: App,
) -> None:
    """The wallet cannot cover February: deactivated. The payment that covers it commits the
    credit, the reactivation charge and the service state in ONE database transaction."""
    ida = add_customer(app, T0, "Ida", available_funds="30.00")
    home = add_service(app, T0, ida, "Home 30", active_from=date(2026, 1, 1))
    tick(app, at(2026, 1, 1, 6))
    tick(app, at(2026, 2, 1, 6))
    assert state(app, home) == ("deactivated", "insufficient_funds")

    commits: list[int] = []
    listener = lambda _connection: commits.append(1)  # noqa: E731
    event.listen(app.engine, "commit", listener)
    try:
        recorded = pay(app, ida, "30.00", reference="P-30", now=at(2026, 2, 10, 15))
    finally:
        event.remove(app.engine, "commit", listener)
    assert recorded.created
    assert len(commits) == 1
    assert state(app, home) == ("active", None)  # read back in a fresh unit of work
    with app.uow() as uow:
        rows = uow.session.execute(
            select(Charge.kind, Charge.gross_minor)
            .where(Charge.service_id == home)
            .order_by(Charge.id)
        ).all()
    assert [kind for kind, _ in rows] == ["period", "reactivation"]
    assert wallet(app, ida) == 30_00 - rows[1][1]  # February 10 to 28, prorated, paid at once


@pytest.mark.postgres_only
def test_ten_concurrent_payments_to_one_wallet_leave_the_exact_balance(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    start = threading.Barrier(10)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            pay(app, ann, "1.23", reference=f"CONC-{n}")
        except BaseException as exc:  # collected and re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wallet(app, ann) == 12_30
    assert counts(app)["payments"] == 10
    with app.uow() as uow:
        assert ledger.check(uow.session) == []


@pytest.mark.postgres_only
def test_ten_concurrent_replays_of_one_key_credit_once(app: App) -> None:
    ann = add_customer(app, T0, "Ann")
    start = threading.Barrier(10)
    results: list[Recorded] = []

    def worker() -> None:
        start.wait()
        results.append(pay(app, ann, "5.00", idempotency_key="webhook-evt-1"))

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.created for r in results) == [False] * 9 + [True]
    assert len({r.payment.id for r in results}) == 1
    assert wallet(app, ann) == 5_00


@pytest.mark.postgres_only
def test_payments_of_two_customers_do_not_wait_for_each_other_on_the_system_accounts(
    app: App,
) -> None:
    """Issue 15: every payment of a currency posts to the same cash account, and a payment
    that reactivates a service posts to the same revenue and tax accounts. Those rows used to
    be updated (and so locked) when posted, and held through the customer's re-evaluation to
    the commit: all payments of a currency ran one after another. Now they move as the
    commit's last statement. Ann's payment, reactivating her service, is held open before its
    commit (her customer lock and all her writes taken); Ben's payment, reactivating his,
    commits meanwhile. Then Ann's commits, and the cached balances equal the postings."""
    ann = add_customer(app, T0, "Ann", available_funds="30.00")
    ben = add_customer(app, T0, "Ben", available_funds="30.00")
    homes = [add_service(app, T0, c, "Home 30", active_from=date(2026, 1, 1)) for c in (ann, ben)]
    tick(app, at(2026, 1, 1, 6))
    tick(app, at(2026, 2, 1, 6))
    assert [state(app, h) for h in homes] == [("deactivated", "insufficient_funds")] * 2
    paid_at = at(2026, 2, 10, 15)
    ben_done = threading.Event()
    errors: list[BaseException] = []

    def ben_pays() -> None:
        try:
            pay(app, ben, "30.00", reference="B-1", now=paid_at)
            ben_done.set()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with app.uow() as held:
        post_payment(
            held,
            spec=NewPayment(customer_id=ann, amount="30.00", reference="A-1"),
            now=paid_at,
            actor=ACTOR,
        )
        other = threading.Thread(target=ben_pays)
        other.start()
        finished_while_held = ben_done.wait(timeout=10)
        held.commit()
    other.join(timeout=30)
    assert errors == []
    assert finished_while_held, "Ben's payment waited for Ann's transaction to end"
    assert [state(app, h) for h in homes] == [("active", None)] * 2
    with app.uow() as uow:
        assert ledger.check(uow.session) == []
        cash = ledger.ensure_accounts(
            uow.session, [AccountRef.system(AccountKind.CASH, "USD")], now=paid_at
        )[AccountRef.system(AccountKind.CASH, "USD")]
        assert cash.balance_minor == -4 * 30_00  # two opening funds, two payments


# --- CLI --------------------------------------------------------------------------------------


def cli_run(database_url: str, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["--database-url", database_url, "--now", "2026-01-05T10:00:00Z", *args]
    )


def test_cli_show_reverse_and_refund(app: App, database_url: str) -> None:
    def run(*args: str) -> Any:
        return cli_run(database_url, *args)

    ann = add_customer(app, T0, "Ann")
    assert run("payments", "add", "Ann", "40.00", "--reference", "RC-1").exit_code == 0
    shown = run("payments", "show", "RC-1", "--json")
    assert shown.exit_code == 0, shown.output
    assert '"status": "posted"' in shown.stdout
    assert '"amount": "40.00 USD"' in shown.stdout

    refunded = run("payments", "refund", "Ann", "15.00", "--method", "cash", "--reference", "R1")
    assert refunded.exit_code == 0, refunded.output
    too_much = run("payments", "refund", "Ann", "26.00", "--method", "cash", "--reference", "R2")
    assert too_much.exit_code == 2
    assert "amount:" in too_much.stderr

    no_reason = run("payments", "reverse", "1")
    assert no_reason.exit_code == 2  # --reason is required
    reversed_ = run("payments", "reverse", "1", "--reason", "bounced")
    assert reversed_.exit_code == 0, reversed_.output
    assert "reversed by transaction" in reversed_.stdout
    shown = run("payments", "show", "1", "--json")
    assert '"status": "reversed"' in shown.stdout
    assert wallet(app, ann) == -15_00


def test_cli_a_payment_named_by_a_reference_that_reads_as_several_is_refused(
    app: App, database_url: str
) -> None:
    """At the command line a payment is its id or its external reference, looked up before the
    use case runs; text that names two payments is refused naming the field, nothing written."""

    def run(*args: str) -> Any:
        return cli_run(database_url, *args)

    add_customer(app, T0, "Ann")
    add_customer(app, T0, "Bob")
    assert run("payments", "add", "Ann", "10.00", "--reference", "R-A").exit_code == 0
    assert run("payments", "add", "Bob", "5.00", "--reference", "1").exit_code == 0
    refused = run("payments", "reverse", "1", "--reason", "bounced")
    assert refused.exit_code == 2
    assert "payment: '1' names several payments (1, 2); give the id" in refused.stderr
    assert '"status": "posted"' in run("payments", "show", "R-A", "--json").stdout
    by_reference = run("payments", "reverse", "R-A", "--reason", "bounced")
    assert by_reference.exit_code == 0, by_reference.output
    assert "payment 1 reversed" in by_reference.stdout


def test_cli_a_refund_reference_is_the_customers(app: App, database_url: str) -> None:
    """``payments refund --reference`` is the customer's: Bob's refund under Ann's reference
    is paid to Bob, a repeat is "already refunded", another amount is refused naming it, and
    ``--payment P-1`` means the customer's own P-1 when both have one."""

    def run(*args: str) -> Any:
        return cli_run(database_url, *args)

    ann = add_customer(app, T0, "Ann")
    bob = add_customer(app, T0, "Bob")
    assert run("payments", "add", "Ann", "40.00", "--reference", "P-1").exit_code == 0
    assert run("payments", "add", "Bob", "30.00", "--reference", "P-1").exit_code == 0
    refund_args = ("--method", "cash", "--reference", "R1")
    first = run("payments", "refund", "Ann", "15.00", *refund_args)
    assert first.exit_code == 0, first.output
    bobs = run("payments", "refund", "Bob", "10.00", *refund_args)
    assert bobs.exit_code == 0, bobs.output
    assert "refund of 10.00 USD to 'Bob' by cash recorded" in bobs.stdout
    again = run("payments", "refund", "Bob", "10.00", *refund_args)
    assert again.exit_code == 0, again.output
    assert "already refunded" in again.stdout
    altered = run("payments", "refund", "Ann", "16.00", *refund_args)
    assert altered.exit_code == 2
    assert "reference:" in altered.stderr
    assert "15.00 USD" in altered.stderr
    of_payment = run(
        "payments",
        "refund",
        "Bob",
        "5.00",
        "--method",
        "cash",
        "--reference",
        "R2",
        "--payment",
        "P-1",
    )
    assert of_payment.exit_code == 0, of_payment.output
    assert (wallet(app, ann), wallet(app, bob)) == (25_00, 15_00)
    with app.uow() as uow:
        bob_payment = uow.session.scalars(select(Payment).where(Payment.customer_id == bob)).one()
        refunded = uow.session.scalars(
            select(LedgerTransaction)
            .where(LedgerTransaction.kind == "refund", LedgerTransaction.customer_id == bob)
            .order_by(LedgerTransaction.id)
        ).all()
    assert [t.figures.get("payment_id") for t in refunded] == [None, str(bob_payment.id)]
