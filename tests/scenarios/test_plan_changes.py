"""Mid-period changes: plan changes and terminations, prorated by days, corrected by credit notes.

Issue ("Billing and lifecycle engine", item 2): "mid-period changes (plan change, termination)
are prorated by days, with the remainder rule of the Money type; an upgrade charges the
difference for the rest of the period, a downgrade or termination credits the unused part
through a credit note." Invoices are "immutable once issued; corrections by credit notes."

April 2026 has 30 days, so a change effective on 11 April leaves 20 unused days of 30: an
upgrade from 30.00 to 45.00 credits 20/30 of 30.00 = 20.00 and charges 20/30 of 45.00 = 30.00,
10.00 net. Every scenario ends with the books checked (``check_books``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ispbill.adapters.db.models import Event, Invoice, LedgerPosting, Service
from ispbill.bootstrap import App
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.cli.main import app as cli
from ispbill.use_cases.billing import invoice_documents
from ispbill.use_cases.billing import plan_changes as changes
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import plan_id_of

from .helpers import (
    ACTOR,
    ChargeView,
    InvoiceView,
    add_class,
    add_customer,
    add_plan,
    add_service,
    allocations,
    at,
    charges,
    check_books,
    events,
    invoices,
    pay,
    periods,
    postings,
    state,
    tick,
    wallet,
)

T0 = at(2026, 3, 20, 9)
APRIL = at(2026, 4, 1, 6)
CHANGE = at(2026, 4, 11, 10)  # effective today: 11 April, 20 of April's 30 days unused
MAY = at(2026, 5, 1, 6)
JUNE = at(2026, 6, 1, 6)
APR1, APR11, MAY1, JUN1 = date(2026, 4, 1), date(2026, 4, 11), date(2026, 5, 1), date(2026, 6, 1)


def _catalog(app: App) -> None:
    add_class(app, T0)
    add_plan(app, T0, "Home 30", "30.00")
    add_plan(app, T0, "Home 45", "45.00")


def _prepaid(app: App, name: str, funds: str) -> int:
    return add_customer(app, T0, name, available_funds=funds)


def _postpaid(app: App, name: str, mode: str = "forward", **terms: Any) -> int:
    return add_customer(
        app,
        T0,
        name,
        balance_control="postpaid",
        invoicing_mode=mode,
        use_credit_automatically=True,
        **terms,
    )


def _change(app: App, service: int, plan: str, now: datetime = CHANGE, **kw: Any) -> Any:
    with app.uow() as uow:
        return changes.change_plan(
            uow, service_id=service, plan_id=plan_id_of(uow, plan), now=now, actor=ACTOR, **kw
        )


def _terminate(app: App, service: int, now: datetime = CHANGE, **kw: Any) -> Any:
    with app.uow() as uow:
        return changes.terminate_service(uow, service_id=service, now=now, actor=ACTOR, **kw)


def _documents(app: App, customer: int) -> list[tuple[str, str, int, str, str | None]]:
    """(number, kind, gross, status, number of the corrected invoice) of every document."""
    with app.uow() as uow:
        rows = list(
            uow.session.scalars(
                select(Invoice).where(Invoice.customer_id == customer).order_by(Invoice.id)
            )
        )
        numbers = {i.id: i.number for i in rows}
        return [
            (i.number, i.kind, i.gross_minor, i.status, numbers.get(i.corrects_id or 0))
            for i in rows
        ]


def _april(service: int, gross: int, invoiced: bool) -> ChargeView:
    return ChargeView(service, "period", APR1, MAY1, Fraction(1), gross, at(2026, 4, 1), invoiced)


# -- upgrades ---------------------------------------------------------------------------------------


def test_prepaid_upgrade_credits_the_unused_days_and_charges_the_new_price(app: App) -> None:
    """30.00 -> 45.00 on 11 April: 20.00 back to the wallet on a credit note that names no
    invoice (prepaid charges are not invoiced), 30.00 charged; 45.00 from May."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert wallet(app, pia) == 70_00

    result = _change(app, home, "Home 45")

    assert (str(result.quote.credit_amount), str(result.quote.charge_amount)) == (
        "20.00 USD",
        "30.00 USD",
    )
    assert str(result.quote.net) == "10.00 USD"
    assert str(result.quote.kept) == "10.00 USD"  # 10 used days of 30.00, the remainder
    assert (result.credit_note_number, result.corrected_number, result.invoice_number) == (
        "CN2026-00001",
        None,
        None,
    )
    assert wallet(app, pia) == 60_00
    third = Fraction(2, 3)
    assert charges(app, pia) == [
        _april(home, 30_00, False),
        ChargeView(home, "refund", APR11, MAY1, third, 20_00, CHANGE, True),
        ChargeView(home, "change", APR11, MAY1, third, 30_00, CHANGE, False),
    ]
    assert _documents(app, pia) == [("CN2026-00001", "credit_note", 20_00, "paid", None)]
    base = f"plan-change:{home}:2026-04-11:1"
    assert postings(app, pia)[-4:] == [
        (f"{base}:credit", f"wallet:{pia}:USD", 20_00),
        (f"{base}:credit", "revenue:USD", -20_00),
        (f"{base}:charge", f"wallet:{pia}:USD", -30_00),
        (f"{base}:charge", "revenue:USD", 30_00),
    ]
    [changed] = [e for e in events(app, pia) if e.kind == "service.plan_changed"]
    assert (changed.subject, changed.reason) == (home, "upgrade")
    assert {k: changed.figures[k] for k in ("from_plan", "to_plan", "credit", "charge", "net")} == {
        "from_plan": "Home 30",
        "to_plan": "Home 45",
        "credit": "20.00 USD",
        "charge": "30.00 USD",
        "net": "10.00 USD",
    }
    assert changed.figures["credit_note"] == "CN2026-00001"
    assert changed.figures["balance"] == "60.00 USD"
    check_books(app)

    tick(app, MAY)
    assert periods(app, home)[-1] == (MAY1, date(2026, 5, 31))
    assert charges(app, pia)[-1].gross == 45_00
    assert wallet(app, pia) == 15_00
    assert state(app, home) == ("active", None)
    check_books(app)

    # the wallet credit note prints like any document, naming no invoice
    with app.uow() as uow:
        view = invoice_documents.printable(uow, "CN2026-00001").view
    assert (view.original_number, str(view.gross_total)) == (None, "20.00 USD")


def test_postpaid_upgrade_issues_a_credit_note_and_an_invoice(app: App) -> None:
    """The April invoice stays as issued; a credit note corrects it (20.00) and a new invoice
    bills the new plan's 20 days (30.00). The credit pays the oldest open invoice."""
    _catalog(app)
    paul = _postpaid(app, "Paul")
    home = add_service(app, T0, paul, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert _documents(app, paul) == [("2026-000001", "invoice", 30_00, "issued", None)]

    result = _change(app, home, "Home 45")

    assert (result.invoice_number, result.credit_note_number, result.corrected_number) == (
        "2026-000002",
        "CN2026-00001",
        "2026-000001",
    )
    assert _documents(app, paul) == [
        ("2026-000001", "invoice", 30_00, "partially_paid", None),
        ("2026-000002", "invoice", 30_00, "issued", None),
        ("CN2026-00001", "credit_note", 20_00, "paid", "2026-000001"),
    ]
    assert invoices(app, paul)[1] == InvoiceView(APR11, 30_00, 0, "issued", ((home, APR11, MAY1),))
    assert allocations(app, paul) == [("2026-04-01", 20_00, "credit")]
    assert wallet(app, paul) == -40_00  # 10.00 left on April's invoice + 30.00 on the new one
    with app.uow() as uow:
        note = invoice_documents.get_invoice(uow, "CN2026-00001")
        assert [(line.period_start, line.period_end, line.gross_minor) for line in note.lines] == [
            (APR11, MAY1, 20_00)
        ]
        assert note.lines[0].description == "Home 30 (unused days)"
        new = invoice_documents.get_invoice(uow, "2026-000002")
        assert new.lines[0].description == "Home 45 (plan change)"
    check_books(app)

    pay(app, at(2026, 4, 15, 12), paul, "40.00", "paul-40")
    assert [d[3] for d in _documents(app, paul)] == ["paid", "paid", "paid"]
    tick(app, MAY)
    assert invoices(app, paul)[-1] == InvoiceView(MAY1, 45_00, 0, "issued", ((home, MAY1, JUN1),))
    check_books(app)


# -- downgrades -------------------------------------------------------------------------------------


def test_downgrade_gives_a_net_credit_on_a_credit_note(app: App) -> None:
    """45.00 -> 30.00 on 11 April: 30.00 credited, 20.00 charged, 10.00 net back."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "100.00")
    dan = _postpaid(app, "Dan")
    pia_home = add_service(app, T0, pia, "Home 45", active_from=APR1)
    dan_home = add_service(app, T0, dan, "Home 45", active_from=APR1)
    tick(app, APRIL)

    prepaid = _change(app, pia_home, "Home 30")
    postpaid = _change(app, dan_home, "Home 30")

    for result in (prepaid, postpaid):
        assert [str(a) for a in (result.quote.credit_amount, result.quote.charge_amount)] == [
            "30.00 USD",
            "20.00 USD",
        ]
        assert str(result.quote.net) == "-10.00 USD"
    assert wallet(app, pia) == 65_00  # 100 - 45 + 30 - 20
    assert _documents(app, pia) == [("CN2026-00001", "credit_note", 30_00, "paid", None)]
    assert _documents(app, dan) == [
        ("2026-000001", "invoice", 45_00, "partially_paid", None),
        ("2026-000002", "invoice", 20_00, "issued", None),
        ("CN2026-00002", "credit_note", 30_00, "paid", "2026-000001"),
    ]
    assert allocations(app, dan) == [("2026-04-01", 30_00, "credit")]
    assert wallet(app, dan) == -35_00
    [changed] = [e for e in events(app, dan) if e.kind == "service.plan_changed"]
    assert changed.reason == "downgrade"
    check_books(app)

    tick(app, MAY)
    assert [c.gross for c in charges(app, pia)][-1] == 30_00
    assert [c.gross for c in charges(app, dan)][-1] == 30_00
    check_books(app)


def test_changing_back_the_same_day_nets_to_nothing(app: App) -> None:
    """A -> B -> A on one day: the second change credits the first change's charge; the keys
    stay distinct and the wallet ends where it was."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    _change(app, home, "Home 45")
    back = _change(app, home, "Home 30", now=at(2026, 4, 11, 15))
    assert [str(a) for a in (back.quote.credit_amount, back.quote.charge_amount)] == [
        "30.00 USD",
        "20.00 USD",
    ]
    assert wallet(app, pia) == 70_00
    assert back.credit_note_number == "CN2026-00002"
    assert {k for k, _, _ in postings(app, pia)} >= {
        f"plan-change:{home}:2026-04-11:2:credit",
        f"plan-change:{home}:2026-04-11:2:charge",
    }
    check_books(app)


def test_a_backdated_change_credits_from_its_day(app: App) -> None:
    """Recorded on 11 April, effective 5 April: 26 of 30 days are repriced."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    result = _change(app, home, "Home 45", effective=date(2026, 4, 5))
    assert result.quote.credit is not None
    assert result.quote.credit.quantity == Fraction(26, 30)
    assert [str(a) for a in (result.quote.credit_amount, result.quote.charge_amount)] == [
        "26.00 USD",
        "39.00 USD",
    ]
    check_books(app)


# -- terminations -----------------------------------------------------------------------------------


def test_prepaid_termination_credits_the_unused_days_and_reactivates_another_service(
    app: App,
) -> None:
    """Ending Home 45 on 11 April gives back 30.00; the wallet now covers the deactivated
    Home 30, which the engine reactivates at once (20 days of April, 20.00)."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "60.00")
    big = add_service(app, T0, pia, "Home 45", active_from=APR1)
    small = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert (state(app, big), state(app, small)) == (
        ("active", None),
        ("deactivated", "insufficient_funds"),
    )

    result = _terminate(app, big, reason="moving abroad")

    assert str(result.quote.credit_amount) == "30.00 USD"
    assert result.quote.charge is None
    assert result.credit_note_number == "CN2026-00001"
    assert state(app, big) == ("ended", "terminated")
    assert state(app, small) == ("active", None)
    with app.uow() as uow:
        ended = uow.session.get(Service, big)
        assert ended is not None
        assert (ended.active_to, ended.next_due_at) == (date(2026, 4, 10), None)
    assert charges(app, pia)[-2:] == [
        ChargeView(big, "refund", APR11, MAY1, Fraction(2, 3), 30_00, CHANGE, True),
        ChargeView(small, "reactivation", APR11, MAY1, Fraction(2, 3), 20_00, CHANGE, False),
    ]
    assert wallet(app, pia) == 25_00  # 60 - 45 + 30 - 20
    kinds = [(e.kind, e.subject, e.reason) for e in events(app, pia) if e.at == CHANGE]
    assert kinds == [("service.ended", big, "moving abroad"), ("service.active", small, "")]
    check_books(app)

    pay(app, at(2026, 4, 20, 12), pia, "60.00", "pia-60")
    for month in (MAY, JUNE):
        tick(app, month)
    later = [(c.service, c.start, c.gross) for c in charges(app, pia) if c.start >= MAY1]
    assert later == [(small, MAY1, 30_00), (small, JUN1, 30_00)]  # none for the ended service
    check_books(app)


def test_postpaid_termination_corrects_the_invoice_and_ends_billing(app: App) -> None:
    _catalog(app)
    dan = _postpaid(app, "Dan")
    home = add_service(app, T0, dan, "Home 30", active_from=APR1)
    tick(app, APRIL)
    result = _terminate(app, home)
    assert (str(result.quote.credit_amount), result.corrected_number) == (
        "20.00 USD",
        "2026-000001",
    )
    assert _documents(app, dan) == [
        ("2026-000001", "invoice", 30_00, "partially_paid", None),
        ("CN2026-00001", "credit_note", 20_00, "paid", "2026-000001"),
    ]
    assert wallet(app, dan) == -10_00
    [ended] = [e for e in events(app, dan) if e.kind == "service.ended"]
    assert (ended.reason, ended.figures["from"], ended.figures["credit"]) == (
        "terminated",
        "active",
        "20.00 USD",
    )
    for month in (MAY, JUNE):
        tick(app, month)
    assert len(charges(app, dan)) == 2
    assert len(invoices(app, dan)) == 2
    check_books(app)


def test_backward_termination_charges_only_the_used_days(app: App) -> None:
    """In arrears nothing of April is charged yet: ending on 11 April charges 10 days of 30
    (10.00) on an invoice, and nothing is credited or charged later."""
    _catalog(app)
    bea = _postpaid(app, "Bea", mode="backward")
    home = add_service(app, T0, bea, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert charges(app, bea) == []

    result = _terminate(app, home)

    assert result.quote.credit is None
    assert (str(result.quote.charge_amount), result.invoice_number) == ("10.00 USD", "2026-000001")
    assert result.credit_note_number is None
    assert charges(app, bea) == [
        ChargeView(home, "period", APR1, APR11, Fraction(1, 3), 10_00, CHANGE, True)
    ]
    for month in (MAY, JUNE):
        tick(app, month)
    assert len(charges(app, bea)) == 1
    assert wallet(app, bea) == -10_00
    check_books(app)


def test_backward_plan_change_charges_the_old_days_then_bills_the_new_plan(app: App) -> None:
    _catalog(app)
    bea = _postpaid(app, "Bea", mode="backward")
    home = add_service(app, T0, bea, "Home 30", active_from=APR1)
    tick(app, APRIL)
    result = _change(app, home, "Home 45")
    assert str(result.quote.charge_amount) == "10.00 USD"
    tick(app, MAY)
    tick(app, JUNE)
    assert [(c.kind, c.start, c.end, c.quantity, c.gross) for c in charges(app, bea)] == [
        ("period", APR1, APR11, Fraction(1, 3), 10_00),
        ("period", APR11, MAY1, Fraction(2, 3), 30_00),
        ("period", MAY1, JUN1, Fraction(1), 45_00),
    ]
    assert [i.gross for i in invoices(app, bea)] == [10_00, 30_00, 45_00]
    check_books(app)


# -- state follows the money ------------------------------------------------------------------------


def test_a_downgrade_of_a_deactivated_prepaid_service_reactivates_it(app: App) -> None:
    """Deactivated on 1 April (35.00 < 45.00): nothing was charged, so nothing is credited;
    on the cheaper plan the wallet covers a period and the engine reactivates at once."""
    _catalog(app)
    pia = _prepaid(app, "Pia", "35.00")
    home = add_service(app, T0, pia, "Home 45", active_from=APR1)
    tick(app, APRIL)
    assert state(app, home) == ("deactivated", "insufficient_funds")

    result = _change(app, home, "Home 30")

    assert (result.quote.credit, result.quote.charge, result.credit_note_number) == (
        None,
        None,
        None,
    )
    assert state(app, home) == ("active", None)
    assert charges(app, pia) == [
        ChargeView(home, "reactivation", APR11, MAY1, Fraction(2, 3), 20_00, CHANGE, False)
    ]
    assert wallet(app, pia) == 15_00
    check_books(app)


def test_a_postpaid_upgrade_past_the_credit_limit_blocks_the_service(app: App) -> None:
    """Credit limit 35.00: April's 30.00 is within it; the upgrade's 10.00 more is not."""
    _catalog(app)
    lea = _postpaid(app, "Lea", credit_limit="35.00")
    home = add_service(app, T0, lea, "Home 30", active_from=APR1)
    tick(app, APRIL)
    assert state(app, home) == ("active", None)

    _change(app, home, "Home 45")

    assert wallet(app, lea) == -40_00
    assert state(app, home) == ("suspended", "credit_limit")
    check_books(app)


def test_a_change_with_tax_credits_net_and_tax_and_the_parts_sum(app: App) -> None:
    """21 % VAT on top, 31-day May, change on 11 May (21 of 31 days unused): each amount is
    rounded once and what stays charged is the remainder, to the cent."""
    add_class(app, T0)
    with app.uow() as uow:
        vat = catalog.add_tax_profile(
            uow, name="VAT 21", rate="21", inclusive=False, now=T0, actor=ACTOR
        ).id
    for name, price in (("Fibre 10", "10.00"), ("Fibre 17", "17.00")):
        spec = catalog.NewPlan(
            name=name,
            price=price,
            currency="USD",
            download="50M",
            upload="10M",
            tax_profile_id=vat,
        )
        with app.uow() as uow:
            catalog.add_plan(uow, spec=spec, now=T0, actor=ACTOR)
    dan = _postpaid(app, "Dan")
    home = add_service(app, T0, dan, "Fibre 10", active_from=MAY1)
    tick(app, MAY)
    result = _change(app, home, "Fibre 17", now=at(2026, 5, 11, 10))

    quote = result.quote
    assert quote.credit is not None
    assert quote.charge is not None
    assert quote.credit.quantity == Fraction(21, 31)
    # 10.00 * 21/31 = 6.774 -> 6.77 net, 1.42 tax; 17.00 * 21/31 = 11.516 -> 11.52 net, 2.42 tax
    assert (quote.credit.split.net.minor, quote.credit.split.tax.minor) == (6_77, 1_42)
    assert (quote.charge.split.net.minor, quote.charge.split.tax.minor) == (11_52, 2_42)
    assert quote.kept is not None
    assert quote.kept.minor + quote.credit.gross.minor == 12_10  # May's 10.00 + 2.10 VAT
    with app.uow() as uow:
        note = invoice_documents.get_invoice(uow, "CN2026-00001")
        assert (note.net_minor, note.tax_minor, note.gross_minor) == (6_77, 1_42, 8_19)
        assert note.lines[0].tax_rate_bp == 2100
    check_books(app)


# -- refusals ---------------------------------------------------------------------------------------


def _everything(app: App) -> tuple[object, ...]:
    with app.uow() as uow:
        session = uow.session
        return (
            [
                (s.id, s.plan_id, s.state, s.billed_until, s.active_to)
                for s in session.scalars(select(Service).order_by(Service.id))
            ],
            session.scalars(select(LedgerPosting.id)).all(),
            session.scalars(select(Invoice.id)).all(),
            session.scalars(select(Event.id)).all(),
        )


def test_refusals_change_nothing(app: App) -> None:
    _catalog(app)
    with app.uow() as uow:
        spec = catalog.NewPlan(
            name="Euro 30", price="30.00", currency="EUR", download="50M", upload="10M"
        )
        catalog.add_plan(uow, spec=spec, now=T0, actor=ACTOR)
    pia = _prepaid(app, "Pia", "35.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    gone = add_service(app, T0, pia, "Home 30", active_from=date(2026, 4, 20))
    tick(app, APRIL)
    _terminate(app, gone)
    before = _everything(app)

    refusals = [
        (lambda: _change(app, home, "Euro 30"), "plan", "EUR"),
        (lambda: _change(app, home, "Home 30"), "plan", "already on plan"),
        (lambda: _change(app, gone, "Home 45"), "service", "has ended"),
        (lambda: _terminate(app, gone), "service", "has ended"),
        (lambda: _change(app, home, "Home 45", effective=date(2026, 4, 12)), "effective", "future"),
        (
            lambda: _change(app, home, "Home 45", effective=date(2026, 3, 31)),
            "effective",
            "2026-04-01",
        ),
        (lambda: _change(app, home, "Home 45"), "plan", "top up first"),  # 5.00 < 10.00 more
        (lambda: _change(app, home, "Nope"), "plan", "Nope"),
    ]
    for attempt, field, words in refusals:
        with pytest.raises(IspbillError) as caught:
            attempt()
        error = caught.value
        assert getattr(error, "field", None) == field, error
        assert words in str(error), error
        assert _everything(app) == before
    check_books(app)


# -- the command line -------------------------------------------------------------------------------


def test_cli_change_plan_and_terminate(app: App, database_url: str, tmp_path: Path) -> None:
    _catalog(app)
    pia = _prepaid(app, "Pia", "100.00")
    home = add_service(app, T0, pia, "Home 30", active_from=APR1)
    tick(app, APRIL)
    runner = CliRunner()

    options = ["--database-url", database_url, "--now", CHANGE.isoformat()]

    def run(*args: str) -> dict[str, Any]:
        result = runner.invoke(cli, [*options, *args, "--json"])
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    changed = run("services", "change-plan", str(home), "Home 45", "--on", "2026-04-11")
    assert {k: changed[k] for k in ("credit", "charge", "net", "credit_note", "to_plan")} == {
        "credit": "20.00 USD",
        "charge": "30.00 USD",
        "net": "10.00 USD",
        "credit_note": "CN2026-00001",
        "to_plan": "Home 45",
    }
    ended = run("services", "terminate", str(home), "--reason", "moving")
    assert {k: ended[k] for k in ("action", "credit", "credit_note", "state", "active_to")} == {
        "action": "termination",
        "credit": "30.00 USD",
        "credit_note": "CN2026-00002",
        "state": "ended (terminated)",
        "active_to": "2026-04-10",
    }
    refused = runner.invoke(cli, [*options, "services", "terminate", str(home)])
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: service: service {home} has ended")
    # a wallet credit note prints like any document
    target = tmp_path / "cn.pdf"
    printed = runner.invoke(
        cli, [*options, "invoices", "pdf", "CN2026-00002", "--out", str(target)]
    )
    assert printed.exit_code == 0, printed.output
    assert target.read_bytes().startswith(b"%PDF")
    check_books(app)
