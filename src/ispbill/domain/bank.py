"""Bank statement lines: what an import needs from any bank format, and how to name a line.

The adapters (CSV with a column map, ISO 20022 camt.053, SWIFT MT940) read files into
``StatementLine`` values; everything after that is format-blind. A line is named by the bank's
own transaction id, qualified by the account so two banks' numbering can never collide; when the
bank gives no id, by a stable hash of what the line says and where it stands in the file, so
importing the same file again finds the same names and creates nothing new.

Matching a line to a customer starts from the references a payer typed. Czech and Slovak banks
carry a variable symbol ("VS"), up to ten digits, often zero-padded; others a structured creditor
reference or free text. ``reference_candidates`` lists every reading worth looking up.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from ispbill.domain.money import Money


class LineStatus(StrEnum):
    UNMATCHED = "unmatched"  # a credit no customer could be found for (or that was refused)
    MATCHED = "matched"  # a credit that became a payment
    IGNORED = "ignored"  # a debit or a zero line: money going out is not a payment


class StatementFormat(StrEnum):
    CSV = "csv"
    CAMT053 = "camt053"
    MT940 = "mt940"


@dataclass(frozen=True)
class StatementLine:
    """One booked entry: ``amount`` is signed, positive for money received (a credit)."""

    index: int
    booked_on: date
    amount: Money
    account: str | None = None
    bank_transaction_id: str | None = None
    reference: str | None = None
    counterparty_iban: str | None = None
    counterparty_name: str | None = None
    description: str = ""
    raw: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_credit(self) -> bool:
        return self.amount.is_positive

    @property
    def external_id(self) -> str:
        """The line's name, stable across imports of the same statement (at most 140 chars)."""
        account = normalize_iban(self.account) if self.account else ""
        if self.bank_transaction_id:
            name = (
                f"{account}/{self.bank_transaction_id.strip()}"
                if account
                else (self.bank_transaction_id.strip())
            )
            if len(name) <= 140:
                return name
        parts = (
            account,
            self.booked_on.isoformat(),
            str(self.amount.minor),
            self.amount.currency,
            self.reference or "",
            self.bank_transaction_id or "",
            str(self.index),
        )
        digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]
        return f"h:{digest}"


_IBAN_JUNK = re.compile(r"[\s\-]")
_VARIABLE_SYMBOL = re.compile(r"(?:^|[^A-Z])VS[\s:./=-]*(\d{1,10})(?!\d)", re.IGNORECASE)
_LONE_NUMBER = re.compile(r"\d{1,20}")
NOT_PROVIDED = frozenset({"NOTPROVIDED", "NONREF", "NONE", "N/A"})


def normalize_iban(value: str) -> str:
    """IBANs compare without spaces or dashes, in upper case."""
    return _IBAN_JUNK.sub("", value).upper()


def reference_candidates(line: StatementLine) -> list[str]:
    """Readings of the payer's reference to look a customer up by, most explicit first.

    The reference field as given; a variable symbol found in it or in the description
    ("VS:0000001001", "/VS/1001"); and a purely numeric reference without its leading zeros.
    """
    found: list[str] = []

    def add(value: str | None) -> None:
        text = (value or "").strip()
        if text and text.upper() not in NOT_PROVIDED and text not in found:
            found.append(text)

    add(line.reference)
    for text in (line.reference or "", line.description):
        for match in _VARIABLE_SYMBOL.finditer(text):
            add(match.group(1))
    for text in list(found):
        if _LONE_NUMBER.fullmatch(text):
            add(text.lstrip("0"))
    return found
