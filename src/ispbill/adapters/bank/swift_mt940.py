"""SWIFT MT940 (customer statement) read with the ``mt-940`` package.

``mt-940`` handles the tag grammar, the bank dialects and the structured ``:86:`` sub-fields
(``?20`` purpose, ``?31`` counterparty IBAN, ``?32`` name, SEPA ``EREF+``/``SVWZ+`` keywords);
ispbill asks it for every fix it offers (``Options.all()``: reversal marks signed, IBAN kept
apart from the name, details never truncated, a byte-order mark dropped). A file may hold
several statements (one per account or currency); each ``:61:`` line is one ``StatementLine``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import mt940

from ispbill.domain.bank import StatementLine
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

FIELD = "file"
PROCESSORS: dict[str, Any] = {
    # spaces between the ?20..?29 purpose chunks: "internet January", not "internetJanuary"
    "post_transaction_details": [mt940.processors.transaction_details_post_processor_with_space],
}


def looks_like(data: bytes) -> bool:
    head = data[:4096]
    return b":20:" in head and (b":25:" in head or b":61:" in head)


def parse(data: bytes) -> list[StatementLine]:
    text = _decode(data)
    try:
        statements = mt940.parse_statements(
            text, processors=PROCESSORS, options=mt940.Options.all()
        )
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValidationError(FIELD, f"not a readable MT940 statement ({exc})") from None
    lines: list[StatementLine] = []
    for statement in statements:
        account = _clean(statement.data.get("account_identification"))
        for transaction in statement:
            lines.append(_line(len(lines), account, transaction.data))
    if not lines and ":61:" not in text:
        raise ValidationError(FIELD, "no :61: statement lines found; is this an MT940 file?")
    return lines


def _decode(data: bytes) -> str:
    """SWIFT text is ASCII; banks export in UTF-8 or Latin-1 (CP1250 in Central Europe)."""
    for encoding in ("utf-8-sig", "cp1250", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationError(FIELD, "cannot be decoded as text")  # pragma: no cover (latin-1)


def _line(index: int, account: str | None, data: dict[str, Any]) -> StatementLine:
    amount_obj = data.get("amount")
    if amount_obj is None or not isinstance(amount_obj.amount, Decimal):
        raise ValidationError(FIELD, f"statement line {index + 1} has no amount")
    currency = amount_obj.currency or data.get("currency")
    if not currency:
        raise ValidationError(FIELD, f"statement line {index + 1} has no currency")
    amount = Money.from_major(amount_obj.amount, str(currency), field="amount")
    customer_reference = _clean(data.get("customer_reference"))
    end_to_end = _clean(data.get("end_to_end_reference"))
    kref = customer_reference if customer_reference not in (None, "NONREF") else None
    description = " ".join(
        filter(
            None,
            (
                _clean(data.get("purpose")),
                _clean(data.get("additional_purpose")),
                _clean(data.get("transaction_details")),
                _clean(data.get("extra_details")),
            ),
        )
    )
    raw = {
        key: str(value)
        for key, value in data.items()
        if value not in (None, "")
        and key not in ("amount", "date", "entry_date", "guessed_entry_date")
    }
    booked = data.get("entry_date") or data["date"]
    return StatementLine(
        index=index,
        booked_on=date(booked.year, booked.month, booked.day),
        amount=amount,
        account=account,
        bank_transaction_id=_clean(data.get("bank_reference")),
        reference=end_to_end or kref,
        counterparty_iban=_clean(data.get("applicant_iban") or data.get("gvc_applicant_iban")),
        counterparty_name=_clean(data.get("applicant_name")),
        description=description,
        raw=raw,
    )


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None
