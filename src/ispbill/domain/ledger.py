"""Double-entry ledger: accounts, postings and balanced entries.

Design overview (after django-hordak and beancount):

* Every movement of money is an ``Entry`` (a ledger transaction) of two or more ``Posting``s whose
  amounts sum to zero in each currency. An unbalanced entry cannot be constructed.
* Sign convention: a positive posting *credits* an account, a negative one *debits* it. An
  account's balance is the plain sum of its postings, so a customer's wallet is positive while
  the ISP owes the customer money (prepaid funds, credit) and negative while the customer owes
  the ISP (postpaid debt). Asset accounts such as cash therefore carry negative (debit) sums.
* The ledger is append-only: a mistake is corrected by a new entry that reverses the old one
  (TigerBeetle's "correcting transfers"), never by an edit. The database enforces that too.
* Every entry carries an idempotency key, unique in storage, so a retried payment, a re-run tick
  or a replayed webhook can never post twice (ARCHITECTURE invariant 3).
* An entry records both when it takes effect (``effective_at``) and, in storage, when it was
  recorded.

CRM.COM seed: "Debit wallet transactions are created when the subscription is billed. Credit
wallet transactions are created when the wallet receives a payment."
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from ispbill.domain.errors import LedgerError, ValidationError
from ispbill.domain.money import Money, normalize_currency

MAX_AMOUNT_MINOR = 10**15
"""The largest amount a price, a limit or a posting may have, in minor units: sums of them stay
far inside the database's 64-bit integers."""


def check_amount_range(amount: Money, field_name: str) -> Money:
    """Refuse an amount too large to store and add up safely, naming the field."""
    if abs(amount.minor) > MAX_AMOUNT_MINOR:
        limit = Money(MAX_AMOUNT_MINOR, amount.currency)
        raise ValidationError(field_name, f"must be at most {limit} in size")
    return amount


class AccountKind(StrEnum):
    """What an account stands for. Only wallets belong to a customer."""

    WALLET = "wallet"
    REVENUE = "revenue"
    TAX_PAYABLE = "tax_payable"
    CASH = "cash"
    BANK = "bank"
    CARD = "card"
    GATEWAY_CLEARING = "gateway_clearing"
    REFILL_CARD_LIABILITY = "refill_card_liability"
    REFILL_CARD_SALES = "refill_card_sales"
    ADJUSTMENTS = "adjustments"


class EntryKind(StrEnum):
    """Why money moved; drives reports and the wording of a wallet statement."""

    PAYMENT = "payment"
    OPENING_FUNDS = "opening_funds"
    CHARGE = "charge"
    CREDIT_NOTE = "credit_note"
    REFUND = "refund"
    REVERSAL = "reversal"
    CARD_ISSUE = "card_issue"
    CARD_REDEMPTION = "card_redemption"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Names an account without knowing its storage id.

    System accounts are one per (kind, currency); wallets are one per (customer, currency).
    """

    kind: AccountKind
    currency: str
    customer_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", normalize_currency(self.currency))
        if self.kind is AccountKind.WALLET and self.customer_id is None:
            raise ValidationError("account", "a wallet belongs to a customer")
        if self.kind is not AccountKind.WALLET and self.customer_id is not None:
            raise ValidationError("account", f"a {self.kind} account is not a customer's")

    @property
    def code(self) -> str:
        """Stable unique key in storage, e.g. ``wallet:42:USD`` or ``revenue:USD``."""
        if self.customer_id is not None:
            return f"{self.kind}:{self.customer_id}:{self.currency}"
        return f"{self.kind}:{self.currency}"

    @classmethod
    def wallet(cls, customer_id: int, currency: str) -> AccountRef:
        return cls(AccountKind.WALLET, currency, customer_id)

    @classmethod
    def system(cls, kind: AccountKind, currency: str) -> AccountRef:
        return cls(kind, currency)


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg of an entry: ``amount`` credits (positive) or debits (negative) ``account``."""

    account: AccountRef
    amount: Money

    def __post_init__(self) -> None:
        if self.amount.currency != self.account.currency:
            raise ValidationError(
                "currency",
                f"posting in {self.amount.currency} to a {self.account.currency} account",
            )
        if self.amount.is_zero:
            raise ValidationError("amount", "a posting must not be zero")
        check_amount_range(self.amount, "amount")


@dataclass(frozen=True, slots=True)
class Entry:
    """A balanced ledger transaction, ready to be stored exactly once under ``key``."""

    key: str
    kind: EntryKind
    effective_at: datetime
    postings: tuple[Posting, ...]
    memo: str = ""
    customer_id: int | None = None
    reverses_key: str | None = None
    figures: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > 200:
            raise ValidationError("idempotency_key", "must be 1 to 200 characters")
        if self.effective_at.utcoffset() != timedelta(0):
            raise ValidationError("effective_at", "must be a UTC instant")
        if len(self.postings) < 2:
            raise LedgerError(f"entry {self.key!r} needs at least two postings")
        unbalanced = {c: s for c, s in currency_sums(self.postings).items() if s != 0}
        if unbalanced:
            raise LedgerError(f"entry {self.key!r} does not sum to zero: {unbalanced}")

    def amount_for(self, account: AccountRef) -> Money:
        """Net effect of this entry on one account (zero if it is not touched)."""
        total = Money.zero(account.currency)
        for posting in self.postings:
            if posting.account == account:
                total = total + posting.amount
        return total


def currency_sums(postings: Iterable[Posting]) -> dict[str, int]:
    """Sum of posting amounts per currency, in minor units."""
    sums: dict[str, int] = defaultdict(int)
    for posting in postings:
        sums[posting.amount.currency] += posting.amount.minor
    return dict(sums)


def transfer(
    *,
    key: str,
    kind: EntryKind,
    debit: AccountRef,
    credit: AccountRef,
    amount: Money,
    effective_at: datetime,
    memo: str = "",
    customer_id: int | None = None,
    figures: Mapping[str, str] | None = None,
) -> Entry:
    """The common two-legged entry: ``amount`` leaves ``debit`` and reaches ``credit``."""
    if not amount.is_positive:
        raise ValidationError("amount", "must be greater than zero")
    return Entry(
        key=key,
        kind=kind,
        effective_at=effective_at,
        postings=(Posting(debit, -amount), Posting(credit, amount)),
        memo=memo,
        customer_id=customer_id,
        figures=dict(figures or {}),
    )


def split_entry(
    *,
    key: str,
    kind: EntryKind,
    debit: AccountRef,
    credits: Sequence[tuple[AccountRef, Money]],
    effective_at: datetime,
    memo: str = "",
    customer_id: int | None = None,
    figures: Mapping[str, str] | None = None,
) -> Entry:
    """One debit spread over several credits (a charge split into revenue and tax payable)."""
    legs = [Posting(account, amount) for account, amount in credits if not amount.is_zero]
    if not legs:
        raise ValidationError("amount", "must be greater than zero")
    total = legs[0].amount
    for leg in legs[1:]:
        total = total + leg.amount
    return Entry(
        key=key,
        kind=kind,
        effective_at=effective_at,
        postings=(Posting(debit, -total), *legs),
        memo=memo,
        customer_id=customer_id,
        figures=dict(figures or {}),
    )


def reversal(original: Entry, *, key: str, effective_at: datetime, memo: str = "") -> Entry:
    """The entry that undoes ``original``: every posting negated, linked to it."""
    return Entry(
        key=key,
        kind=EntryKind.REVERSAL,
        effective_at=effective_at,
        postings=tuple(Posting(p.account, -p.amount) for p in original.postings),
        memo=memo or f"reversal of {original.key}",
        customer_id=original.customer_id,
        reverses_key=original.key,
    )


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A ledger check finding: what is wrong, where, and by how much."""

    subject: str
    expected_minor: int
    actual_minor: int

    def describe(self) -> str:
        return f"{self.subject}: expected {self.expected_minor}, found {self.actual_minor}"


def compare_balances(cached: Mapping[str, int], posted: Mapping[str, int]) -> list[Discrepancy]:
    """Accounts whose cached balance differs from the sum of their postings."""
    findings = []
    for code in sorted(set(cached) | set(posted)):
        expected, actual = posted.get(code, 0), cached.get(code, 0)
        if expected != actual:
            findings.append(Discrepancy(f"account {code} cached balance", expected, actual))
    return findings
