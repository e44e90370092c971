"""Pure rules of the domain: customers, plans, taxes, the ledger and the service lifecycle."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.calendar import CycleKind
from ispbill.domain.customers import (
    BalanceControl,
    BalanceTerms,
    ClassDefaults,
    CustomerOverrides,
    CustomField,
    check_custom_data,
    effective_terms,
    validate_emails,
    validate_grace_days,
    validate_locale,
    validate_name,
)
from ispbill.domain.dates import check_date
from ispbill.domain.errors import LedgerError, ValidationError
from ispbill.domain.ledger import (
    MAX_AMOUNT_MINOR,
    AccountKind,
    AccountRef,
    Discrepancy,
    Entry,
    EntryKind,
    Posting,
    compare_balances,
    currency_sums,
    reversal,
    split_entry,
    transfer,
)
from ispbill.domain.lifecycle import TRANSITIONS, ServiceState, check_transition
from ispbill.domain.money import Money
from ispbill.domain.plans import (
    MAX_DATA_BYTES,
    FupAction,
    FupTier,
    PeriodOption,
    Speed,
    instantiate_cycle,
    parse_data_volume,
    parse_speed,
    validate_fup_tiers,
    validate_period_options,
    validate_price,
)
from ispbill.domain.taxes import TaxProfile, parse_rate_bp, split_tax

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def refused(field: str, fragment: str = "") -> pytest.RaisesExc[ValidationError]:
    """``pytest.raises`` for a ValidationError on ``field`` whose text contains ``fragment``."""
    return pytest.raises(ValidationError, match=rf"^{re.escape(field)}: .*{re.escape(fragment)}")


# -- customers ---------------------------------------------------------------------------------


class TestCustomFields:
    def test_required_field_refuses_missing_and_empty(self) -> None:
        field = CustomField("national_id")
        with refused("custom_data.national_id", "required by the customer class"):
            field.check(None)
        with refused("custom_data.national_id", "required"):
            field.check("")
        field.check("x")

    def test_optional_field_accepts_missing_but_checks_a_given_value(self) -> None:
        field = CustomField("tax_code", required=False, pattern="[A-Z]{2}[0-9]+")
        field.check(None)
        field.check("")
        field.check("CZ123")
        with refused("custom_data.tax_code", "must match [A-Z]{2}[0-9]+"):
            field.check("cz123")

    def test_pattern_must_match_the_whole_value(self) -> None:
        field = CustomField("pin", pattern="[0-9]{4}")
        with refused("custom_data.pin"):
            field.check("12345")

    @pytest.mark.parametrize("name", ["National ID", "1st", "", "a-b", "x" * 65, "Name"])
    def test_field_names_are_lower_snake_case(self, name: str) -> None:
        with refused("custom_fields", "lower_snake_case"):
            CustomField(name)

    def test_bad_pattern_is_refused_when_the_class_is_defined(self) -> None:
        with refused("custom_fields", "not a valid regex"):
            CustomField("code", pattern="[0-9")

    def test_class_field_names_are_unique(self) -> None:
        with refused("custom_fields", "unique"):
            ClassDefaults(custom_fields=(CustomField("a"), CustomField("a", required=False)))

    def test_custom_data_keeps_undeclared_fields_and_checks_their_names(self) -> None:
        fields = [CustomField("national_id", pattern="[0-9]+")]
        assert check_custom_data(fields, {"national_id": "12", "note": "vip"}) == {
            "national_id": "12",
            "note": "vip",
        }
        with refused("custom_data.Bad Key", "lower_snake_case"):
            check_custom_data(fields, {"national_id": "12", "Bad Key": "x"})
        with refused("custom_data.national_id", "required"):
            check_custom_data(fields, {"note": "vip"})


class TestClassDefaultsAndOverrides:
    def test_customer_values_win_when_set_even_when_falsy(self) -> None:
        defaults = ClassDefaults(
            grace_days=7, invoice_template="classic", notification_emails=("a@example.com",)
        )
        inherited = effective_terms(defaults, CustomerOverrides())
        assert (inherited.grace_days, inherited.invoice_template) == (7, "classic")
        assert inherited.notification_emails == ("a@example.com",)
        own = effective_terms(
            defaults, CustomerOverrides(grace_days=0, notification_emails=(), tax_profile_id=3)
        )
        assert own.grace_days == 0
        assert own.notification_emails == ()
        assert own.tax_profile_id == 3
        assert own.invoice_template == "classic"

    @pytest.mark.parametrize("days", [-1, 366])
    def test_grace_days_range(self, days: int) -> None:
        with refused("grace_days", "between 0 and 365"):
            validate_grace_days(days)
        with refused("grace_days"):
            ClassDefaults(grace_days=days)
        assert validate_grace_days(0) == 0
        assert validate_grace_days(365) == 365

    def test_emails(self) -> None:
        assert validate_emails(["a@b.cz"]) == ("a@b.cz",)
        with refused("notification_emails", "'a@b' is not an e-mail address"):
            validate_emails(["a@b.cz", "a@b"])


class TestBalanceTerms:
    def test_prepaid_with_funds_and_minimum_balance(self) -> None:
        terms = BalanceTerms(
            BalanceControl.PREPAID, "USD", minimum_balance=usd(500), available_funds=usd(9000)
        )
        assert terms.available_funds == usd(9000)

    def test_postpaid_with_credit_limit(self) -> None:
        BalanceTerms(BalanceControl.POSTPAID, "USD", credit_limit=usd(10_000))
        BalanceTerms(BalanceControl.POSTPAID, "USD", credit_limit=usd(0))

    def test_credit_limit_only_on_postpaid(self) -> None:
        with refused("credit_limit", "only postpaid customers have a credit limit"):
            BalanceTerms(BalanceControl.PREPAID, "USD", credit_limit=usd(0))

    def test_credit_limit_not_negative_and_in_the_customer_currency(self) -> None:
        with refused("credit_limit", "must not be negative"):
            BalanceTerms(BalanceControl.POSTPAID, "USD", credit_limit=usd(-1))
        with refused("credit_limit", "customer's currency USD, not EUR"):
            BalanceTerms(BalanceControl.POSTPAID, "USD", credit_limit=Money(100, "EUR"))

    def test_minimum_balance_only_on_prepaid(self) -> None:
        with refused("minimum_balance", "only prepaid customers"):
            BalanceTerms(BalanceControl.POSTPAID, "USD", minimum_balance=usd(100))
        BalanceTerms(BalanceControl.POSTPAID, "USD", minimum_balance=usd(0))  # the default

    def test_available_funds_only_prepaid_and_not_negative(self) -> None:
        with refused("available_funds", "only prepaid customers"):
            BalanceTerms(BalanceControl.POSTPAID, "USD", available_funds=usd(100))
        with refused("available_funds", "must not be negative"):
            BalanceTerms(BalanceControl.PREPAID, "USD", available_funds=usd(-100))
        with refused("available_funds", "customer's currency"):
            BalanceTerms(BalanceControl.PREPAID, "USD", available_funds=Money(100, "CZK"))

    @pytest.mark.parametrize("field", ["available_funds", "minimum_balance"])
    def test_amounts_must_fit_storage(self, field: str) -> None:
        with refused(field, "must be at most"):
            BalanceTerms(BalanceControl.PREPAID, "USD", **{field: usd(MAX_AMOUNT_MINOR + 1)})
        BalanceTerms(BalanceControl.PREPAID, "USD", **{field: usd(MAX_AMOUNT_MINOR)})


class TestNamesAndLocales:
    def test_names_are_trimmed_and_spaces_collapsed(self) -> None:
        assert validate_name("  Alice \t  Novak ") == "Alice Novak"

    def test_empty_and_long_names(self) -> None:
        with refused("name", "must not be empty"):
            validate_name(" \n ")
        with refused("name", "at most 200 characters"):
            validate_name("n" * 201)
        assert validate_name("n" * 200) == "n" * 200
        with refused("invoice_template", "at most 100 characters"):
            validate_name("t" * 101, "invoice_template", 100)

    @pytest.mark.parametrize("name", ["a\x00b", "bell\x07", "zero\u200bwidth"])
    def test_control_characters_refused(self, name: str) -> None:
        with refused("name", "control characters"):
            validate_name(name)

    def test_letters_of_any_script_are_fine(self) -> None:
        assert validate_name("Škoda Žluťoučký 北京 🚀") == "Škoda Žluťoučký 北京 🚀"
        assert validate_name("Acme\u00a0s.r.o.") == "Acme s.r.o."

    @pytest.mark.parametrize(
        ("text", "canonical"), [("en_US", "en_US"), ("cs_CZ", "cs_CZ"), ("de", "de")]
    )
    def test_known_locales(self, text: str, canonical: str) -> None:
        assert validate_locale(text) == canonical

    @pytest.mark.parametrize("text", ["", "zz_QQ", "english", "x" * 40])
    def test_unknown_locales(self, text: str) -> None:
        with refused("locale", "unknown locale"):
            validate_locale(text)


# -- plans ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kbps"),
    [
        ("10M", 10_000),
        ("10m", 10_000),
        ("512k", 512),
        ("1G", 1_000_000),
        ("20000", 20_000),
        ("10Mbps", 10_000),
        (" 50M ", 50_000),
        ("100mbit/s", 100_000),
    ],
)
def test_parse_speed(text: str, kbps: int) -> None:
    assert parse_speed(text) == kbps


@pytest.mark.parametrize("text", ["", "0", "0M", "-5M", "fast", "1.5M", "10 M", "M", "10T"])
def test_parse_speed_refuses(text: str) -> None:
    with refused("download_kbps", "must be a speed"):
        parse_speed(text, "download_kbps")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("50GB", 50 * 10**9),
        ("500 MB", 500 * 10**6),
        ("1.5TB", 1_500 * 10**9),
        ("0.5gb", 500 * 10**6),
        ("1B", 1),
        ("10KB", 10_000),
        ("1000000TB", MAX_DATA_BYTES),
    ],
)
def test_parse_data_volume(text: str, size: int) -> None:
    assert parse_data_volume(text) == size


@pytest.mark.parametrize(
    "text",
    ["", "50", "GB", "0GB", "-1GB", "1.2.3GB", "1,5GB", "50XB", "1000001TB", "9" * 30 + "TB"],
)
def test_parse_data_volume_refuses(text: str) -> None:
    with refused("fup_tiers[1].limit", "must be a data volume"):
        parse_data_volume(text, "fup_tiers[1].limit")


class TestFup:
    def tier(self, n: int, gb: int, action: FupAction = FupAction.SUSPEND) -> FupTier:
        speed = Speed(1000, 500) if action is FupAction.THROTTLE else None
        return FupTier(n, gb * 10**9, action, speed)

    def test_tiers_are_sorted_and_increasing(self) -> None:
        tiers = [self.tier(2, 500), self.tier(1, 200, FupAction.THROTTLE)]
        assert [t.tier for t in validate_fup_tiers(tiers)] == [1, 2]

    def test_limits_must_increase(self) -> None:
        with refused("fup_tiers", "must exceed the previous one"):
            validate_fup_tiers([self.tier(1, 200), self.tier(2, 100)])
        with refused("fup_tiers", "must exceed the previous one"):
            validate_fup_tiers([self.tier(1, 200), self.tier(2, 200)])

    def test_tiers_have_no_gaps(self) -> None:
        with refused("fup_tiers", "without gaps"):
            validate_fup_tiers([self.tier(1, 100), self.tier(3, 300)])
        with refused("fup_tiers", "without gaps"):
            validate_fup_tiers([self.tier(1, 100), self.tier(1, 300)])

    def test_tier_rules(self) -> None:
        with refused("fup_tiers", "between 1 and 4"):
            self.tier(5, 100)
        with refused("fup_tiers[1].limit", "greater than zero"):
            FupTier(1, 0, FupAction.SUSPEND)
        with refused("fup_tiers[1].speed", "needs a speed"):
            FupTier(1, 10, FupAction.THROTTLE)
        with refused("fup_tiers[2].speed", "takes no speed"):
            FupTier(2, 10, FupAction.SUSPEND, Speed(1, 1))
        with refused("upload_kbps", "between 1 and"):
            Speed(1000, 0)

    def test_no_tiers_is_fine(self) -> None:
        assert validate_fup_tiers([]) == ()


class TestPeriods:
    def test_one_month_is_always_enabled_and_sorted(self) -> None:
        options = validate_period_options([PeriodOption(12, 1000), PeriodOption(3)])
        assert [(o.months, o.discount_bp) for o in options] == [(1, 0), (3, 0), (12, 1000)]

    def test_explicit_one_month_is_kept_once(self) -> None:
        options = validate_period_options([PeriodOption(1, 0), PeriodOption(6)])
        assert [o.months for o in options] == [1, 6]

    def test_duplicates_refused(self) -> None:
        with refused("period_months", "only once"):
            validate_period_options([PeriodOption(3), PeriodOption(3, 500)])

    @pytest.mark.parametrize("months", [0, 5, 7, 36, -1])
    def test_allowed_lengths(self, months: int) -> None:
        with refused("period_months", "must be one of 1, 2, 3, 4, 6, 12, 24"):
            PeriodOption(months)

    @pytest.mark.parametrize("discount", [-1, 10_000])
    def test_discount_range(self, discount: int) -> None:
        with refused("discount", "below 100%"):
            PeriodOption(12, discount)


def test_price_rules() -> None:
    assert validate_price(usd(0)) == usd(0)
    with refused("price", "must not be negative"):
        validate_price(usd(-1))
    with refused("price", "must be at most"):
        validate_price(usd(MAX_AMOUNT_MINOR + 1))


class TestInstantiateCycle:
    def test_anniversary_anchors_on_the_start_day(self) -> None:
        cycle = instantiate_cycle(CycleKind.MONTHLY_ANNIVERSARY, 1, date(2026, 1, 30))
        assert (cycle.anchor_day, cycle.origin) == (30, date(2026, 1, 30))

    def test_anchor_day_zero_is_refused_not_replaced(self) -> None:
        with refused("anchor_day", "between 1 and 31"):
            instantiate_cycle(CycleKind.MONTHLY_ANNIVERSARY, 1, date(2026, 1, 5), anchor_day=0)

    def test_days_30_counts_from_the_start(self) -> None:
        cycle = instantiate_cycle(CycleKind.DAYS_30, 1, date(2026, 3, 20))
        assert (cycle.anchor_day, cycle.origin) == (None, date(2026, 3, 20))

    def test_calendar_month_has_neither(self) -> None:
        cycle = instantiate_cycle(CycleKind.MONTHLY, 1, date(2026, 3, 20))
        assert (cycle.anchor_day, cycle.origin) == (None, None)


# -- taxes ---------------------------------------------------------------------------------------


def test_exclusive_tax_is_added() -> None:
    split = split_tax(usd(10_000), TaxProfile("VAT", 2100))
    assert (split.net, split.tax, split.gross) == (usd(10_000), usd(2100), usd(12_100))


def test_inclusive_tax_is_taken_out_of_the_price() -> None:
    split = split_tax(usd(10_000), TaxProfile("VAT", 2100, inclusive=True))
    assert (split.net, split.tax) == (usd(8264), usd(1736))
    assert split.gross == usd(10_000)


def test_tax_rounds_half_up_once() -> None:
    assert split_tax(usd(50), TaxProfile("T", 100)).tax == usd(1)  # 0.005 -> 0.01
    assert split_tax(usd(49), TaxProfile("T", 100)).tax == usd(0)  # 0.0049 -> 0.00


def test_no_tax() -> None:
    split = split_tax(usd(999), TaxProfile("none", 0, inclusive=True))
    assert (split.net, split.tax) == (usd(999), usd(0))


@given(
    price=st.integers(0, 10**12),
    rate=st.integers(0, 10_000),
    inclusive=st.booleans(),
)
def test_split_always_sums_exactly(price: int, rate: int, inclusive: bool) -> None:
    split = split_tax(usd(price), TaxProfile("T", rate, inclusive))
    assert split.net + split.tax == split.gross
    if inclusive:
        assert split.gross == usd(price)
        # net is price / (1 + rate) rounded once: within half a minor unit
        assert abs(split.net.minor * (10_000 + rate) - price * 10_000) * 2 <= 10_000 + rate
    else:
        assert split.net == usd(price)
        assert abs(split.tax.minor * 10_000 - price * rate) * 2 <= 10_000
    assert split.tax.minor >= 0


@pytest.mark.parametrize(
    ("text", "bp"),
    [("21", 2100), ("21%", 2100), (" 21 % ", 2100), ("10.5", 1050), ("10.25", 1025), ("0", 0)],
)
def test_parse_rate(text: str, bp: int) -> None:
    assert parse_rate_bp(text) == bp


@pytest.mark.parametrize("text", ["", "abc", "-5", "10.125", "1e2", "21%%", "10,5"])
def test_parse_rate_refuses(text: str) -> None:
    with refused("rate", "percentage"):
        parse_rate_bp(text)


@pytest.mark.parametrize("bp", [-1, 10_001])
def test_tax_rate_range(bp: int) -> None:
    with refused("rate", "between 0% and 100%"):
        TaxProfile("T", bp)


# -- ledger --------------------------------------------------------------------------------------

CASH = AccountRef.system(AccountKind.CASH, "USD")
REVENUE = AccountRef.system(AccountKind.REVENUE, "USD")
TAX = AccountRef.system(AccountKind.TAX_PAYABLE, "USD")
WALLET = AccountRef.wallet(7, "USD")


def entry(*postings: Posting, key: str = "k") -> Entry:
    return Entry(key=key, kind=EntryKind.ADJUSTMENT, effective_at=NOW, postings=postings)


class TestAccounts:
    def test_codes(self) -> None:
        assert WALLET.code == "wallet:7:USD"
        assert CASH.code == "cash:USD"
        assert AccountRef.wallet(1, "usd").currency == "USD"

    def test_wallet_without_customer_refused(self) -> None:
        with refused("account", "a wallet belongs to a customer"):
            AccountRef(AccountKind.WALLET, "USD")

    def test_system_account_with_customer_refused(self) -> None:
        with refused("account", "not a customer's"):
            AccountRef(AccountKind.REVENUE, "USD", customer_id=1)

    def test_unknown_currency_refused(self) -> None:
        with refused("currency", "unknown ISO 4217"):
            AccountRef.system(AccountKind.CASH, "XXQ")


class TestEntries:
    def test_balanced_entry(self) -> None:
        e = entry(Posting(CASH, usd(-100)), Posting(WALLET, usd(100)))
        assert e.amount_for(WALLET) == usd(100)
        assert e.amount_for(CASH) == usd(-100)
        assert e.amount_for(REVENUE) == usd(0)

    def test_unbalanced_entry_refused(self) -> None:
        with pytest.raises(LedgerError, match="does not sum to zero"):
            entry(Posting(CASH, usd(-100)), Posting(WALLET, usd(99)))

    def test_single_posting_refused(self) -> None:
        with pytest.raises(LedgerError, match="at least two postings"):
            entry(Posting(CASH, usd(0 - 1)))

    def test_zero_posting_refused(self) -> None:
        with refused("amount", "must not be zero"):
            Posting(CASH, usd(0))

    def test_posting_currency_must_match_the_account(self) -> None:
        with refused("currency", "posting in EUR to a USD account"):
            Posting(WALLET, Money(100, "EUR"))

    def test_each_currency_balances_separately(self) -> None:
        eur_cash = AccountRef.system(AccountKind.CASH, "EUR")
        eur_wallet = AccountRef.wallet(7, "EUR")
        e = entry(
            Posting(CASH, usd(-100)),
            Posting(WALLET, usd(100)),
            Posting(eur_cash, Money(-5, "EUR")),
            Posting(eur_wallet, Money(5, "EUR")),
        )
        assert currency_sums(e.postings) == {"USD": 0, "EUR": 0}
        with pytest.raises(LedgerError, match="does not sum to zero"):
            entry(
                Posting(CASH, usd(-100)),
                Posting(eur_wallet, Money(100, "EUR")),
            )

    def test_key_and_time_rules(self) -> None:
        legs = (Posting(CASH, usd(-1)), Posting(WALLET, usd(1)))
        with refused("idempotency_key", "1 to 200 characters"):
            entry(*legs, key="")
        with refused("idempotency_key"):
            entry(*legs, key="k" * 201)
        entry(*legs, key="k" * 200)
        with refused("effective_at", "UTC instant"):
            Entry("k", EntryKind.PAYMENT, datetime(2026, 1, 1, 9), legs)  # naive
        with refused("effective_at", "UTC instant"):
            Entry("k", EntryKind.PAYMENT, NOW.astimezone(timezone(timedelta(hours=1))), legs)

    def test_posting_amount_must_fit_storage(self) -> None:
        with refused("amount", "must be at most"):
            Posting(WALLET, usd(MAX_AMOUNT_MINOR + 1))


class TestTransfersAndReversals:
    def test_transfer_moves_from_debit_to_credit(self) -> None:
        e = transfer(
            key="t",
            kind=EntryKind.PAYMENT,
            debit=CASH,
            credit=WALLET,
            amount=usd(250),
            effective_at=NOW,
        )
        assert [(p.account, p.amount) for p in e.postings] == [
            (CASH, usd(-250)),
            (WALLET, usd(250)),
        ]

    @pytest.mark.parametrize("minor", [0, -1])
    def test_transfer_of_nothing_or_less_refused(self, minor: int) -> None:
        with refused("amount", "greater than zero"):
            transfer(
                key="t",
                kind=EntryKind.PAYMENT,
                debit=CASH,
                credit=WALLET,
                amount=usd(minor),
                effective_at=NOW,
            )

    def test_transfer_across_currencies_refused(self) -> None:
        with refused("currency"):
            transfer(
                key="t",
                kind=EntryKind.PAYMENT,
                debit=AccountRef.system(AccountKind.CASH, "EUR"),
                credit=WALLET,
                amount=usd(1),
                effective_at=NOW,
            )

    def test_split_entry_debits_the_sum_and_drops_zero_legs(self) -> None:
        e = split_entry(
            key="charge",
            kind=EntryKind.CHARGE,
            debit=WALLET,
            credits=[(REVENUE, usd(3000)), (TAX, usd(630)), (CASH, usd(0))],
            effective_at=NOW,
        )
        assert [(p.account, p.amount) for p in e.postings] == [
            (WALLET, usd(-3630)),
            (REVENUE, usd(3000)),
            (TAX, usd(630)),
        ]
        with refused("amount", "greater than zero"):
            split_entry(
                key="c",
                kind=EntryKind.CHARGE,
                debit=WALLET,
                credits=[(REVENUE, usd(0))],
                effective_at=NOW,
            )

    def test_reversal_negates_every_posting_and_links(self) -> None:
        original = split_entry(
            key="charge:1",
            kind=EntryKind.CHARGE,
            debit=WALLET,
            credits=[(REVENUE, usd(3000)), (TAX, usd(630))],
            effective_at=NOW,
            customer_id=7,
        )
        later = NOW + timedelta(days=1)
        undo = reversal(original, key="reverse:charge:1", effective_at=later)
        assert undo.kind is EntryKind.REVERSAL
        assert undo.reverses_key == "charge:1"
        assert undo.customer_id == 7
        assert undo.effective_at == later
        assert "charge:1" in undo.memo
        assert [(p.account, p.amount) for p in undo.postings] == [
            (p.account, -p.amount) for p in original.postings
        ]
        for account in (WALLET, REVENUE, TAX):
            assert original.amount_for(account) + undo.amount_for(account) == usd(0)
        again = reversal(undo, key="reverse:reverse", effective_at=later)
        assert [p.amount for p in again.postings] == [p.amount for p in original.postings]


def test_compare_balances_reports_each_drift() -> None:
    findings = compare_balances(cached={"a": 10, "b": 5, "c": 0}, posted={"a": 10, "b": 4, "d": 3})
    assert findings == [
        Discrepancy("account b cached balance", 4, 5),
        Discrepancy("account d cached balance", 3, 0),
    ]
    assert findings[0].describe() == "account b cached balance: expected 4, found 5"
    assert compare_balances({"a": 1}, {"a": 1}) == []


# -- lifecycle -----------------------------------------------------------------------------------

ALLOWED = {
    (ServiceState.PENDING, ServiceState.ACTIVE),
    (ServiceState.PENDING, ServiceState.DEACTIVATED),
    (ServiceState.PENDING, ServiceState.ENDED),
    (ServiceState.ACTIVE, ServiceState.SUSPENDED),
    (ServiceState.ACTIVE, ServiceState.DEACTIVATED),
    (ServiceState.ACTIVE, ServiceState.PAUSED),
    (ServiceState.ACTIVE, ServiceState.ENDED),
    (ServiceState.SUSPENDED, ServiceState.ACTIVE),
    (ServiceState.SUSPENDED, ServiceState.DEACTIVATED),
    (ServiceState.SUSPENDED, ServiceState.PAUSED),
    (ServiceState.SUSPENDED, ServiceState.ENDED),
    (ServiceState.DEACTIVATED, ServiceState.ACTIVE),
    (ServiceState.DEACTIVATED, ServiceState.SUSPENDED),
    (ServiceState.DEACTIVATED, ServiceState.PAUSED),
    (ServiceState.DEACTIVATED, ServiceState.ENDED),
    (ServiceState.PAUSED, ServiceState.ACTIVE),
    (ServiceState.PAUSED, ServiceState.ENDED),
}


def test_transition_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert set(TRANSITIONS) == set(ServiceState)


@pytest.mark.parametrize(
    ("current", "target"), list(product(ServiceState, ServiceState)), ids=lambda s: str(s)
)
def test_check_transition(current: ServiceState, target: ServiceState) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with refused("state", f"a {current} service cannot become {target}"):
            check_transition(current, target)


def test_ended_is_final_and_nothing_returns_to_pending() -> None:
    assert TRANSITIONS[ServiceState.ENDED] == frozenset()
    assert all(ServiceState.PENDING not in targets for targets in TRANSITIONS.values())


# --- the range of accepted dates (issue 13) -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        date(1970, 1, 1),
        date(2200, 12, 31),
        datetime(2200, 12, 31, 23, 59, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # its own date
    ],
)
def test_dates_in_range_are_returned_as_given(value: date) -> None:
    assert check_date("day", value) is value


@pytest.mark.parametrize(
    "value",
    [
        date(1969, 12, 31),
        date(2201, 1, 1),
        date(1, 1, 1),
        date(9999, 12, 31),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_dates_out_of_range_name_the_field_and_the_rule(value: date) -> None:
    with pytest.raises(ValidationError) as refused:
        check_date("active_to", value)
    assert refused.value.field == "active_to"
    assert refused.value.rule == (
        f"{value.isoformat()} is out of range; must be between 1970-01-01 and 2200-12-31"
    )
