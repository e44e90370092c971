"""The demo ISP: a small operator's year, simulated day by day through the real use cases.

``run_demo`` builds a catalogue (a tax profile, two customer classes, plans on every kind of
cycle), signs up customers that between them use every billing cycle, both balance controls,
both invoicing modes, automatic credit on and off, minimum balances, credit limits and an
"active to" date, then moves time one day at a time: a tick at each midnight, customers signing
up in the morning and payments arriving (or not) during the day. Every step goes through the
same use cases as the CLI and the API (``add_customer``, ``record_payment``, ``tick``,
``reactivate_service``), each at its own instant, so the demo is also an end-to-end check: the
summary ends with the ledger check.

Deterministic: one ``random.Random(seed)`` drives every choice, so a seed gives the same year.
Nothing here reads a clock.
"""

from __future__ import annotations

import random
import time
from calendar import monthrange
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from enum import StrEnum

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.calendar import local_date
from ispbill.domain.ledger import Discrepancy
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.domain.taxes import TaxProfile, split_tax
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.customer_accounts import NewCustomer
from ispbill.use_cases.catalog.offerings import NewClass, NewPlan
from ispbill.use_cases.payments.recording import NewPayment, record_payment
from ispbill.use_cases.queries import demo_figures
from ispbill.use_cases.queries.demo_figures import MonthFigures
from ispbill.use_cases.service_lifecycle import new_services as service_cases
from ispbill.use_cases.service_lifecycle.new_services import NewService
from ispbill.use_cases.service_lifecycle.pauses import reactivate_service

ACTOR = "demo"
CURRENCY = "USD"
VAT = TaxProfile("VAT 21", 2100)
UowFactory = Callable[[], UnitOfWork]


class Payer(StrEnum):
    """How a demo customer pays."""

    MONTHLY = "monthly"  # about a month's cost on a day of the month, now and then forgetting
    TOPUP = "topup"  # small irregular top-ups
    STOPPER = "stopper"  # pays monthly, then stops for good
    INVOICES = "invoices"  # pays each invoice some days after it is issued
    LATE = "late"  # pays invoices late and sometimes not at all
    NEVER = "never"  # pays nothing after signing up


@dataclass(frozen=True)
class PlanSpec:
    name: str
    price: str
    cycle: str
    nominal_days: int  # for a month's cost: days one period covers, about
    download: str = "50M"
    upload: str = "10M"
    periods: tuple[str, ...] = ()


PLANS = (
    PlanSpec("Home 30", "30.00", "customer", 30, "100M", "20M"),
    PlanSpec("Hotspot Day", "1.00", "customer", 1, "20M", "5M"),
    PlanSpec("Weekly 8", "8.00", "customer", 7, "30M", "10M"),
    PlanSpec("Half-month 16", "16.00", "customer", 15, "50M", "10M"),
    PlanSpec("Prepaid 7d", "8.00", "7d", 7, "30M", "10M"),
    PlanSpec("Prepaid 30d", "28.00", "30days", 30, "50M", "10M"),
    PlanSpec("Fibre 100", "40.00", "customer", 30, "100M", "100M", ("3:5%", "6:8%", "12:10%")),
)


@dataclass(frozen=True)
class Archetype:
    """One kind of customer; the demo cycles through these to make ``customers`` people."""

    label: str
    balance_control: str
    cycle: str
    plan: str
    payer: Payer
    joins_on_day: int = 0  # days after the start
    invoicing: str = "forward"
    period_months: int | None = None
    use_credit: bool = True
    credit_limit: str | None = None
    minimum_balance: str | None = None
    funds: str | None = None
    timezone: str = "UTC"
    klass: str = "Residential"
    pauses: bool = False  # an "active to" date; reactivated two weeks after the pause


ARCHETYPES = (
    Archetype("prepaid monthly", "prepaid", "monthly", "Home 30", Payer.MONTHLY, funds="40"),
    Archetype(
        "postpaid monthly",
        "postpaid",
        "monthly",
        "Home 30",
        Payer.INVOICES,
        credit_limit="100",
        klass="Business",
    ),
    Archetype("prepaid 7 days", "prepaid", "monthly", "Prepaid 7d", Payer.TOPUP, funds="10"),
    Archetype(
        "postpaid anniversary from the 30th, in arrears",
        "postpaid",
        "monthly_anniversary",
        "Home 30",
        Payer.LATE,
        joins_on_day=29,
        invoicing="backward",
        credit_limit="60",
    ),
    Archetype(
        "prepaid daily hotspot",
        "prepaid",
        "daily",
        "Hotspot Day",
        Payer.TOPUP,
        minimum_balance="2",
        funds="5",
    ),
    Archetype("prepaid weekly, stops paying", "prepaid", "weekly", "Weekly 8", Payer.STOPPER),
    Archetype(
        "postpaid semimonthly, no automatic credit",
        "postpaid",
        "semimonthly",
        "Half-month 16",
        Payer.INVOICES,
        use_credit=False,
        credit_limit="40",
        joins_on_day=3,
    ),
    Archetype(
        "prepaid 30-day cycle, seasonal pause",
        "prepaid",
        "days_30",
        "Home 30",
        Payer.MONTHLY,
        funds="100",
        pauses=True,
        joins_on_day=9,
    ),
    Archetype(
        "prepaid yearly fibre",
        "prepaid",
        "monthly",
        "Fibre 100",
        Payer.NEVER,
        period_months=12,
        funds="530",
    ),
    Archetype(
        "postpaid quarterly fibre, in arrears",
        "postpaid",
        "monthly",
        "Fibre 100",
        Payer.INVOICES,
        period_months=3,
        invoicing="backward",
        klass="Business",
    ),
    Archetype("prepaid 30-day plan", "prepaid", "monthly", "Prepaid 30d", Payer.MONTHLY),
    Archetype(
        "prepaid with minimum balance",
        "prepaid",
        "monthly",
        "Home 30",
        Payer.TOPUP,
        minimum_balance="5",
        funds="50",
    ),
    Archetype(
        "postpaid, stops paying, no credit limit",
        "postpaid",
        "monthly",
        "Home 30",
        Payer.NEVER,
        invoicing="backward",
    ),
    Archetype(
        "prepaid in Prague, anniversary from the 15th",
        "prepaid",
        "monthly_anniversary",
        "Home 30",
        Payer.MONTHLY,
        joins_on_day=14,
        timezone="Europe/Prague",
        funds="20",
    ),
    Archetype(
        "postpaid half-yearly fibre",
        "postpaid",
        "monthly",
        "Fibre 100",
        Payer.LATE,
        period_months=6,
        credit_limit="300",
        klass="Business",
    ),
)


@dataclass
class DemoCustomer:
    archetype: Archetype
    name: str
    joins_at: datetime
    monthly_cost_minor: int
    pay_day: int
    delay_days: int
    stop_day: date | None
    customer_id: int = 0
    service_ids: list[int] = field(default_factory=list)
    active_to: date | None = None
    paused_on: date | None = None


@dataclass
class DemoSummary:
    start: date
    end: date
    customers: int
    ticks: int
    payments_recorded: int
    reactivations: int
    seconds: float
    seconds_ticking: float
    seconds_paying: float
    months: dict[str, MonthFigures]
    opening_funds_minor: int
    balance_sum_minor: int
    balance_min_minor: int
    balance_max_minor: int
    services_by_state: dict[str, int]
    transitions: dict[str, int]  # "to state (by actor)" -> times, from the event log
    invoices: dict[str, tuple[int, int]]  # status -> (count, gross minor)
    open_due_minor: int
    findings: list[Discrepancy]

    @property
    def balanced(self) -> bool:
        return not self.findings

    def money(self, minor: int) -> Money:
        return Money(minor, CURRENCY)


def run_demo(
    uow_factory: UowFactory,
    *,
    customers: int = 50,
    months: int = 12,
    start: date = date(2026, 1, 1),
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Build the demo ISP on an empty, migrated database and live ``months`` months of it."""
    started = time.perf_counter()
    rng = random.Random(seed)
    end = _add_months(start, months)
    total_days = (end - start).days
    setup_at = _at(start, 6)
    ids = build_catalog(uow_factory, now=setup_at)
    people = plan_customers(rng, customers, start=start, total_days=total_days)
    state = _Simulation(uow_factory, rng, people, ids)
    for index in range(total_days):
        day = start + timedelta(days=index)
        state.tick(_at(day, 0))
        for person in people:
            if person.joins_at.date() == day:
                state.sign_up(person)
        state.pay(day)
        state.reactivate(day)
        if progress:
            progress(index + 1, total_days)
    return summarize(
        uow_factory,
        start=start,
        end=end,
        state=state,
        seconds=time.perf_counter() - started,
    )


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock_time(hour, minute), tzinfo=UTC)


def _add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def build_catalog(uow_factory: UowFactory, *, now: datetime) -> dict[str, int]:
    """The tax profile, the classes and the plans; the ids of the classes and plans by name."""
    ids: dict[str, int] = {}
    with uow_factory() as uow:
        vat_id = catalog.add_tax_profile(
            uow, name=VAT.name, rate="21", inclusive=False, now=now, actor=ACTOR
        ).id
    for spec in (
        NewClass(name="Residential", grace_days=7, tax_profile_id=vat_id),
        NewClass(
            name="Business",
            grace_days=14,
            tax_profile_id=vat_id,
            notification_emails=["billing@example.net"],
        ),
    ):
        with uow_factory() as uow:
            ids[spec.name] = catalog.add_class(uow, spec=spec, now=now, actor=ACTOR).id
    for plan in PLANS:
        with uow_factory() as uow:
            ids[plan.name] = catalog.add_plan(
                uow,
                spec=NewPlan(
                    name=plan.name,
                    price=plan.price,
                    currency=CURRENCY,
                    download=plan.download,
                    upload=plan.upload,
                    cycle=plan.cycle,
                    tax_profile_id=vat_id,
                    period_months=plan.periods,
                ),
                now=now,
                actor=ACTOR,
            ).id
    return ids


def plan_customers(
    rng: random.Random, count: int, *, start: date, total_days: int
) -> list[DemoCustomer]:
    """Who signs up when, and how each one pays; decided up front from the seed."""
    people = []
    for number in range(count):
        kind = ARCHETYPES[number % len(ARCHETYPES)]
        round_ = number // len(ARCHETYPES)
        # later rounds of an archetype join on other days (never past the simulated time)
        offset = kind.joins_on_day if round_ == 0 else rng.randrange(0, 28)
        offset = min(offset, max(total_days - 1, 0))
        joins = start + timedelta(days=offset)
        stop_day = None
        if kind.payer is Payer.STOPPER:
            stop_day = joins + timedelta(days=rng.randrange(20, max(21, total_days // 2)))
        people.append(
            DemoCustomer(
                archetype=kind,
                name=f"{_NAMES[number % len(_NAMES)]} {number + 1:03d}",
                joins_at=_at(joins, 8, rng.randrange(0, 60)),
                monthly_cost_minor=_monthly_cost_minor(kind),
                pay_day=rng.randrange(1, 29),
                delay_days=rng.randrange(2, 15) if kind.payer is Payer.INVOICES else 25,
                stop_day=stop_day,
            )
        )
    return people


def _monthly_cost_minor(kind: Archetype) -> int:
    plan = next(p for p in PLANS if p.name == kind.plan)
    price = Money.from_major(plan.price, CURRENCY)
    months = kind.period_months or 1
    gross = split_tax(price * months, VAT).gross.minor
    return gross * 30 // (plan.nominal_days * months)


_NAMES = (
    "Alder",
    "Birch",
    "Cedar",
    "Dogwood",
    "Elm",
    "Fir",
    "Ginkgo",
    "Hazel",
    "Ivy",
    "Juniper",
    "Kapok",
    "Larch",
    "Maple",
    "Nutmeg",
    "Oak",
    "Pine",
    "Quince",
    "Rowan",
    "Spruce",
    "Teak",
)


class _Simulation:
    """The moving parts of one demo run: who is signed up and what happened so far."""

    def __init__(
        self,
        uow_factory: UowFactory,
        rng: random.Random,
        people: list[DemoCustomer],
        ids: dict[str, int],
    ):
        self.uow_factory = uow_factory
        self.rng = rng
        self.people = people
        self.ids = ids  # of the classes and plans, by name
        self.ticks = 0
        self.payments = 0
        self.reactivations = 0
        self.seconds_ticking = 0.0
        self.seconds_paying = 0.0
        self.open_invoices: defaultdict[int, list[tuple[date, int]]] = defaultdict(list)

    def tick(self, now: datetime) -> None:
        report = tick(self.uow_factory, now=now, actor="engine")
        self.ticks += 1
        self.seconds_ticking += report.seconds

    def sign_up(self, person: DemoCustomer) -> None:
        kind = person.archetype
        now = person.joins_at
        spec = NewCustomer(
            name=person.name,
            customer_class_id=self.ids[kind.klass],
            currency=CURRENCY,
            balance_control=kind.balance_control,
            billing_cycle=kind.cycle,
            billing_timezone=kind.timezone,
            invoicing_mode=kind.invoicing,
            use_credit_automatically=kind.use_credit,
            credit_limit=kind.credit_limit,
            minimum_balance=kind.minimum_balance,
            available_funds=kind.funds,
            locale="cs_CZ" if kind.timezone == "Europe/Prague" else "en_US",
        )
        with self.uow_factory() as uow:
            customer = customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)
        person.customer_id = customer.id
        joined = local_date(now, kind.timezone)
        if kind.pauses:
            person.active_to = joined + timedelta(days=self.rng.randrange(60, 150))
        with self.uow_factory() as uow:
            service = service_cases.add_service(
                uow,
                spec=NewService(
                    customer_id=customer.id,
                    plan_id=self.ids[kind.plan],
                    active_from=joined,
                    active_to=person.active_to,
                    period_months=kind.period_months,
                ),
                now=now,
                actor=ACTOR,
            )
        person.service_ids.append(service.id)

    def pay(self, day: date) -> None:
        # what each customer owes, read once a day (a payment only changes its payer's invoices)
        with self.uow_factory() as uow:
            self.open_invoices = defaultdict(list, demo_figures.open_invoice_dues(uow))
        for index, person in enumerate(self.people):
            if not person.customer_id:
                continue
            amount = self._amount_due_today(person, day)
            if amount <= 0:
                continue
            self._record(person, day, index, amount)

    def _amount_due_today(self, person: DemoCustomer, day: date) -> int:
        kind = person.archetype
        rng = self.rng
        cost = person.monthly_cost_minor
        if person.stop_day is not None and day >= person.stop_day:
            return 0
        match kind.payer:
            case Payer.MONTHLY | Payer.STOPPER:
                if day.day != person.pay_day or rng.random() < 0.08:
                    return 0
                extra = Money.from_major(kind.minimum_balance or "0", CURRENCY).minor
                return _whole_units(cost + extra + rng.randrange(0, 500))
            case Payer.TOPUP:
                if rng.random() >= 0.08:
                    return 0
                return _whole_units(cost * rng.randrange(20, 60) // 100)
            case Payer.INVOICES | Payer.LATE:
                if kind.payer is Payer.LATE and rng.random() < 0.6:
                    return 0  # procrastinates today
                return self._open_due(person, day - timedelta(days=person.delay_days))
            case Payer.NEVER:
                return 0

    def _open_due(self, person: DemoCustomer, issued_by: date) -> int:
        return sum(
            due for issued, due in self.open_invoices[person.customer_id] if issued <= issued_by
        )

    def _record(self, person: DemoCustomer, day: date, index: int, amount_minor: int) -> None:
        method = self.rng.choice(("cash", "bank_transfer", "card", "gateway"))
        reference = (
            f"DEMO-{person.customer_id}-{day:%Y%m%d}"
            if method != PaymentMethod.CASH.value
            else None
        )
        now = _at(day, 10 + index % 10, self.rng.randrange(0, 60))
        spec = NewPayment(
            customer_id=person.customer_id,
            amount=Money(amount_minor, CURRENCY),
            method=method,
            reference=reference,
            idempotency_key=f"demo:{person.customer_id}:{day.isoformat()}",
        )
        started = time.perf_counter()
        with self.uow_factory() as uow:
            record_payment(uow, spec=spec, now=now, actor="customer")
        self.seconds_paying += time.perf_counter() - started
        self.payments += 1

    def reactivate(self, day: date) -> None:
        """Seasonal customers come back two weeks after their service paused."""
        for person in self.people:
            if person.active_to is None or not person.service_ids:
                continue
            service_id = person.service_ids[0]
            if person.paused_on is None:
                if day > person.active_to:
                    person.paused_on = day
                continue
            if day != person.paused_on + timedelta(days=14):
                continue
            with self.uow_factory() as uow:
                state = demo_figures.service_state(uow, service_id)
            if state != ServiceState.PAUSED.value:
                continue
            with self.uow_factory() as uow:
                reactivate_service(
                    uow,
                    service_id=service_id,
                    active_to=None,
                    now=_at(day, 9),
                    actor="customer",
                )
            self.reactivations += 1


def _whole_units(minor: int) -> int:
    """People pay round sums: up to the next whole unit."""
    return -(-minor // 100) * 100


def summarize(
    uow_factory: UowFactory, *, start: date, end: date, state: _Simulation, seconds: float
) -> DemoSummary:
    with uow_factory() as uow:
        figures = demo_figures.year_figures(uow)
    balances = figures.balances_minor
    return DemoSummary(
        start=start,
        end=end,
        customers=sum(1 for p in state.people if p.customer_id),
        ticks=state.ticks,
        payments_recorded=state.payments,
        reactivations=state.reactivations,
        seconds=seconds,
        seconds_ticking=state.seconds_ticking,
        seconds_paying=state.seconds_paying,
        months=figures.months,
        opening_funds_minor=figures.opening_funds_minor,
        balance_sum_minor=sum(balances),
        balance_min_minor=min(balances, default=0),
        balance_max_minor=max(balances, default=0),
        services_by_state=figures.services_by_state,
        transitions=figures.transitions,
        invoices=figures.invoices,
        open_due_minor=figures.open_due_minor,
        findings=figures.findings,
    )
