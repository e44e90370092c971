"""Bad input is refused with the field and the rule, and nothing is written (both databases).

Each case calls one use case with one bad value on top of a valid base spec (the control test
proves the base specs are accepted), then compares a snapshot of every table's row count and every
ledger account's cached balance before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.models import Base, LedgerAccount
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.bootstrap import App
from ispbill.domain.errors import Conflict, IspbillError, NotFound, ValidationError
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import name_lookups
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.customer_accounts import NewCustomer
from ispbill.use_cases.catalog.offerings import NewClass, NewPlan
from ispbill.use_cases.service_lifecycle import new_services as service_cases
from ispbill.use_cases.service_lifecycle.new_services import NewService

ACTOR = "test"
Snapshot = tuple[dict[str, int], dict[str, int]]


def snapshot(app: App) -> Snapshot:
    """Row counts of every table and every cached balance (their sum included)."""
    with app.engine.connect() as connection:
        counts = {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in Base.metadata.sorted_tables
        }
        balances = dict(
            connection.execute(select(LedgerAccount.code, LedgerAccount.balance_minor)).all()
        )
    return counts, {code: int(value) for code, value in balances.items()}


def seed(app: App) -> None:
    """A tax profile, two classes, a USD and a EUR plan, a prepaid and a postpaid customer."""
    now = app.clock.now()
    with app.uow() as uow:
        catalog.add_tax_profile(
            uow, name="VAT 21", rate="21", inclusive=False, now=now, actor=ACTOR
        )
    classes: list[dict[str, Any]] = [
        {
            "name": "Residential",
            "grace_days": 7,
            "tax_profile": "VAT 21",
            "custom_fields": ["national_id:required:[0-9]{6,10}"],
        },
        {"name": "Business"},
    ]
    for fields in classes:
        with app.uow() as uow:
            catalog.add_class(uow, spec=NewClass(**ids(uow, fields)), now=now, actor=ACTOR)
    plans = [
        NewPlan(
            name="Home 50",
            price="30.00",
            currency="USD",
            download="50M",
            upload="10M",
            fup_tiers=["200GB:throttle:5M/1M", "500GB:suspend"],
            period_months=["3", "12:10%"],
        ),
        NewPlan(name="Euro 20", price="20.00", currency="EUR", download="20M", upload="5M"),
    ]
    for plan in plans:
        with app.uow() as uow:
            catalog.add_plan(uow, spec=plan, now=now, actor=ACTOR)
    customers: list[dict[str, Any]] = [
        {
            "name": "Alice",
            "customer_class": "Residential",
            "currency": "USD",
            "available_funds": "90.00",
            "custom_data": {"national_id": "1234567"},
        },
        {
            "name": "Acme",
            "customer_class": "Business",
            "currency": "USD",
            "balance_control": "postpaid",
            "credit_limit": "100",
        },
    ]
    for fields in customers:
        with app.uow() as uow:
            spec = NewCustomer(**ids(uow, fields))
            customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)


# What an operator types names a class, a reseller, a tax profile, a customer or a plan by name
# or id; the edge (CLI, API) looks it up before the use case, which takes the id.
LOOKUPS = {
    "customer_class": name_lookups.customer_class_id_of,
    "reseller": name_lookups.reseller_id_of,
    "tax_profile": name_lookups.tax_profile_id_of,
    "customer": name_lookups.customer_id_of,
    "plan": name_lookups.plan_id_of,
}


def ids(uow: UnitOfWork, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with each typed reference looked up as the edge does: ``customer_class`` ->
    ``customer_class_id`` and so on."""
    return {
        f"{key}_id" if key in LOOKUPS else key: LOOKUPS[key](uow, value)
        if key in LOOKUPS
        else value
        for key, value in fields.items()
    }


# Valid base specs: each case changes one thing.
CUSTOMER: dict[str, Any] = {"name": "Carol", "customer_class": "Business", "currency": "USD"}
PLAN = NewPlan(name="Fiber", price="25.00", currency="USD", download="100M", upload="20M")
CLASS = NewClass(name="Gold", custom_fields=["tax_code:optional:[A-Z]{2}[0-9]+"])
SERVICE: dict[str, Any] = {"customer": "Alice", "plan": "Home 50", "period_months": 3}

Call = Callable[[UnitOfWork, datetime], Any]


def customer(**changes: Any) -> Call:
    def call(uow: UnitOfWork, now: datetime) -> Any:
        spec = NewCustomer(**ids(uow, CUSTOMER | changes))
        return customer_cases.add_customer(uow, spec=spec, now=now, actor=ACTOR)

    return call


def plan(**changes: Any) -> Call:
    def call(uow: UnitOfWork, now: datetime) -> Any:
        spec = replace(PLAN, **ids(uow, changes))
        return catalog.add_plan(uow, spec=spec, now=now, actor=ACTOR)

    return call


def klass(**changes: Any) -> Call:
    def call(uow: UnitOfWork, now: datetime) -> Any:
        spec = replace(CLASS, **ids(uow, changes))
        return catalog.add_class(uow, spec=spec, now=now, actor=ACTOR)

    return call


def tax(name: str = "Reduced", rate: str = "10") -> Call:
    return lambda uow, now: catalog.add_tax_profile(
        uow, name=name, rate=rate, inclusive=True, now=now, actor=ACTOR
    )


def service(**changes: Any) -> Call:
    def call(uow: UnitOfWork, now: datetime) -> Any:
        spec = NewService(**ids(uow, SERVICE | changes))
        return service_cases.add_service(uow, spec=spec, now=now, actor=ACTOR)

    return call


@dataclass(frozen=True)
class Case:
    id: str
    call: Call
    field: str
    rule: str
    error: type[IspbillError] = ValidationError


CASES = [
    # customers: the inputs of the "Done when" list first
    Case("unknown currency", customer(currency="XYZ"), "currency", "unknown ISO 4217"),
    Case("duplicate customer name", customer(name="Alice"), "name", "already taken", Conflict),
    Case("duplicate name, other spacing", customer(name="  Alice "), "name", "unique", Conflict),
    Case(
        "credit limit on prepaid",
        customer(credit_limit="50"),
        "credit_limit",
        "only postpaid customers",
    ),
    Case(
        "missing required custom field",
        customer(customer_class="Residential"),
        "custom_data.national_id",
        "required by the customer class",
    ),
    Case(
        "empty required custom field",
        customer(customer_class="Residential", custom_data={"national_id": ""}),
        "custom_data.national_id",
        "required",
    ),
    Case(
        "custom field against its pattern",
        customer(customer_class="Residential", custom_data={"national_id": "12ab"}),
        "custom_data.national_id",
        "must match [0-9]{6,10}",
    ),
    Case(
        "unknown class",
        customer(customer_class="Platinum"),
        "customer_class",
        "no customer class",
        NotFound,
    ),
    Case("unknown class id", customer(customer_class_id=999), "customer_class", "999", NotFound),
    Case(
        "anniversary day 0",
        customer(billing_cycle="monthly_anniversary", anchor_day=0),
        "anchor_day",
        "between 1 and 31",
    ),
    Case(
        "anniversary day 32",
        customer(billing_cycle="monthly_anniversary", anchor_day=32),
        "anchor_day",
        "between 1 and 31",
    ),
    Case(
        "anniversary day other than the creation day",
        customer(billing_cycle="monthly_anniversary", anchor_day=15),
        "anchor_day",
        "creation day (1 in UTC)",
    ),
    Case(
        "anchor day on a non-anniversary cycle",
        customer(billing_cycle="days_30", anchor_day=1),
        "anchor_day",
        "only monthly_anniversary",
    ),
    Case(
        "invalid timezone",
        customer(billing_timezone="Mars/Olympus"),
        "timezone",
        "unknown IANA timezone",
    ),
    Case("empty timezone", customer(billing_timezone=""), "timezone", "unknown IANA timezone"),
    Case(
        "unknown cycle name",
        customer(billing_cycle="fortnightly"),
        "billing_cycle",
        "must be one of",
    ),
    Case(
        "negative available funds",
        customer(available_funds="-5.00"),
        "available_funds",
        "must not be negative",
    ),
    Case(
        "available funds with too many decimals",
        customer(available_funds="10.001"),
        "available_funds",
        "at most 2 decimal places",
    ),
    Case(
        "available funds too large to store",
        customer(available_funds="100000000000000000"),
        "available_funds",
        "must be at most",
    ),
    Case(
        "available funds on postpaid",
        customer(balance_control="postpaid", available_funds="10"),
        "available_funds",
        "only prepaid",
    ),
    Case(
        "minimum balance on postpaid",
        customer(balance_control="postpaid", minimum_balance="10"),
        "minimum_balance",
        "only prepaid customers",
    ),
    Case(
        "negative credit limit",
        customer(balance_control="postpaid", credit_limit="-1"),
        "credit_limit",
        "must not be negative",
    ),
    Case(
        "unknown balance control",
        customer(balance_control="credit"),
        "balance_control",
        "prepaid, postpaid",
    ),
    Case(
        "unknown funds method",
        customer(available_funds="5", funds_method="gold"),
        "funds_method",
        "cash",
    ),
    Case(
        "unknown business model", customer(business_model="isp"), "business_model", "must be one of"
    ),
    Case(
        "unknown invoicing mode", customer(invoicing_mode="sideways"), "invoicing_mode", "forward"
    ),
    Case("unknown locale", customer(locale="zz_QQ"), "locale", "unknown locale"),
    Case("overlong locale", customer(locale="x" * 40), "locale", "unknown locale"),
    Case("unknown reseller", customer(reseller="Nobody"), "reseller", "no reseller", NotFound),
    Case("empty name", customer(name="   "), "name", "must not be empty"),
    Case("overlong name", customer(name="n" * 201), "name", "at most 200 characters"),
    Case("name with a NUL", customer(name="Car\x00ol"), "name", "control characters"),
    Case("grace days out of range", customer(grace_days=400), "grace_days", "between 0 and 365"),
    Case(
        "bad notification e-mail",
        customer(notification_emails=["not-an-email"]),
        "notification_emails",
        "not an e-mail address",
    ),
    Case(
        "overlong invoice template",
        customer(invoice_template="t" * 101),
        "invoice_template",
        "at most 100 characters",
    ),
    # plans
    Case("negative price", plan(price="-1.00"), "price", "must not be negative"),
    Case("price that is not a number", plan(price="cheap"), "price", "must be a number"),
    Case(
        "price too large to store", plan(price="100000000000000000000"), "price", "must be at most"
    ),
    Case("plan in unknown currency", plan(currency="ABC"), "currency", "unknown ISO 4217"),
    Case("duplicate plan name", plan(name="Home 50"), "name", "already taken", Conflict),
    Case(
        "FUP tiers out of order",
        plan(fup_tiers=["200GB:throttle:5M/1M", "100GB:suspend"]),
        "fup_tiers",
        "must exceed the previous one",
    ),
    Case(
        "FUP throttle without a speed",
        plan(fup_tiers=["100GB:throttle"]),
        "fup_tiers[1].speed",
        "needs a speed",
    ),
    Case(
        "five FUP tiers",
        plan(fup_tiers=[f"{n}00GB:suspend" for n in range(1, 6)]),
        "fup_tiers",
        "between 1 and 4",
    ),
    Case(
        "FUP limit too large to store",
        plan(fup_tiers=["99999999999TB:suspend"]),
        "fup_tiers[1].limit",
        "data volume",
    ),
    Case("FUP unknown action", plan(fup_tiers=["100GB:block"]), "fup_tiers[1].action", "throttle"),
    Case(
        "unknown tax profile on a plan",
        plan(tax_profile="VAT 99"),
        "tax_profile",
        "no tax profile",
        NotFound,
    ),
    Case("unknown plan cycle", plan(cycle="fortnightly"), "cycle", "unknown billing cycle"),
    Case("period length not allowed", plan(period_months=["5"]), "period_months", "must be one of"),
    Case("period length twice", plan(period_months=["3", "3:5%"]), "period_months", "only once"),
    Case("speed that is not a speed", plan(download="fast"), "download_kbps", "must be a speed"),
    Case("speed beyond 100 Gbit/s", plan(upload="200G"), "upload_kbps", "between 1 and"),
    # customer classes
    Case(
        "bad custom field pattern",
        klass(custom_fields=["tax_code:required:[0-9"]),
        "custom_fields",
        "not a valid regex",
    ),
    Case(
        "custom field name not snake_case",
        klass(custom_fields=["Tax Code"]),
        "custom_fields",
        "lower_snake_case",
    ),
    Case(
        "custom field flag unknown",
        klass(custom_fields=["tax_code:maybe"]),
        "custom_fields",
        "required|optional",
    ),
    Case("custom field twice", klass(custom_fields=["a", "a:optional"]), "custom_fields", "unique"),
    Case(
        "unknown tax profile on a class",
        klass(tax_profile="VAT 99"),
        "tax_profile",
        "no tax profile",
        NotFound,
    ),
    Case("duplicate class name", klass(name="Business"), "name", "already taken", Conflict),
    Case("class grace days negative", klass(grace_days=-1), "grace_days", "between 0 and 365"),
    Case(
        "class template too long to store",
        klass(invoice_template="t" * 101),
        "invoice_template",
        "at most 100 characters",
    ),
    # tax profiles
    Case("tax rate above 100%", tax(rate="150"), "rate", "between 0% and 100%"),
    Case("tax rate not a number", tax(rate="a lot"), "rate", "percentage"),
    Case("tax rate with three decimals", tax(rate="10.125"), "rate", "percentage"),
    Case("duplicate tax profile", tax(name="VAT 21"), "name", "already taken", Conflict),
    Case("tax name too long to store", tax(name="t" * 101), "name", "at most 100 characters"),
    # services
    Case("service for an unknown plan", service(plan="Nope"), "plan", "no plan 'Nope'", NotFound),
    Case(
        "service for an unknown customer",
        service(customer="Nobody"),
        "customer",
        "no customer",
        NotFound,
    ),
    Case(
        "service for an id beyond any integer",
        service(customer="99999999999999999999999"),
        "customer",
        "no customer",
        NotFound,
    ),
    Case(
        "plan currency differs from the customer's",
        service(plan="Euro 20", period_months=None),
        "plan",
        "priced in EUR, the customer pays in USD",
    ),
    Case(
        "period not enabled by the plan",
        service(period_months=6),
        "period_months",
        "enables billing periods of 1, 3, 12 months",
    ),
    Case(
        "active_to before active_from",
        service(active_from=date(2026, 2, 1), active_to=date(2026, 1, 15)),
        "active_to",
        "must be after active_from",
    ),
    Case(
        "active_to on active_from",
        service(active_from=date(2026, 2, 1), active_to=date(2026, 2, 1)),
        "active_to",
        "must be after active_from",
    ),
    Case(  # issue 13: overflowed every later tick
        "active_to in year 9999",
        service(active_to=date(9999, 12, 31)),
        "active_to",
        "9999-12-31 is out of range; must be between 1970-01-01 and 2200-12-31",
    ),
    Case(  # issue 13: a postpaid tick caught up on two thousand years of periods
        "active_from in year 1",
        service(active_from=date(1, 1, 1)),
        "active_from",
        "must be between 1970-01-01 and 2200-12-31",
    ),
    Case(
        "service invoicing mode unknown",
        service(invoicing_mode="sideways"),
        "invoicing_mode",
        "forward",
    ),
    # the ledger
    Case(
        "reversal of an unknown transaction",
        lambda uow, now: ledger.reverse(uow, original_key="nope", key="rev", now=now),
        "transaction",
        "no transaction 'nope'",
        NotFound,
    ),
]


@pytest.fixture
def seeded(app: App) -> App:
    seed(app)
    return app


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_refusals_name_field_and_rule_and_write_nothing(
    seeded: App, subtests: pytest.Subtests
) -> None:
    """One seeded database per dialect, one subtest per bad input (setting up a database per
    case would cost more than all the cases together)."""
    for case in CASES:
        with subtests.test(case.id):
            before = snapshot(seeded)
            with seeded.uow() as uow, pytest.raises(IspbillError) as excinfo:
                case.call(uow, seeded.clock.now())
            error = excinfo.value
            assert type(error) is case.error, f"{type(error).__name__}: {error}"
            assert getattr(error, "field", None) == case.field, str(error)
            assert str(error).startswith(f"{case.field}: "), str(error)
            assert case.rule in str(error)
            assert "\n" not in str(error)
            assert snapshot(seeded) == before


def test_base_specs_are_accepted_and_change_the_snapshot(seeded: App) -> None:
    """Control: each refusal above is caused by its one bad value, not by the base spec."""
    before = snapshot(seeded)
    for call in (customer(), plan(), klass(), tax(), service()):
        with seeded.uow() as uow:
            call(uow, seeded.clock.now())
    after = snapshot(seeded)
    assert after != before
    for table in ("customers", "plans", "customer_classes", "tax_profiles", "services", "events"):
        assert after[0][table] > before[0][table], table


def test_anniversary_on_the_creation_day_is_accepted(seeded: App) -> None:
    with seeded.uow() as uow:
        row = customer(billing_cycle="monthly_anniversary", anchor_day=1)(uow, seeded.clock.now())
    assert (row.cycle_kind, row.cycle_anchor_day) == ("monthly_anniversary", 1)


def test_failure_after_the_first_writes_rolls_everything_back(
    seeded: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer row, its wallet and its event are flushed before the funds are posted: a
    failure there must leave none of them behind."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("posting failed")

    monkeypatch.setattr(ledger, "post", boom)
    before = snapshot(seeded)
    with seeded.uow() as uow, pytest.raises(RuntimeError, match="posting failed"):
        customer(available_funds="10")(uow, seeded.clock.now())
    assert snapshot(seeded) == before


def test_seed_itself_is_balanced(seeded: App) -> None:
    counts, balances = snapshot(seeded)
    assert counts["customers"] == 2
    assert sum(balances.values()) == 0
    assert balances["wallet:1:USD"] == 9000
    with seeded.uow() as uow:
        assert ledger.check(uow.session) == []
