"""Bank statements exported as CSV, read with the stdlib ``csv`` module and a column map.

Every bank names its columns differently ("Datum", "Objem", "VS" at a Czech bank; "Booking
date", "Amount", "Reference" elsewhere) and writes numbers and dates its own way, so the map is
data the operator writes once per bank, as a TOML file (``[columns]`` and ``[format]`` tables)
or as ``key=value`` pairs on the command line::

    [columns]
    transaction_id = "ID pohybu"
    date = "Datum"
    amount = "Objem"          # signed; or give credit = "..." and debit = "..." columns
    currency = "Měna"
    reference = "VS"          # variable symbol / payment reference
    counterparty_iban = "Protiúčet"
    counterparty_name = "Název protiúčtu"
    description = "Zpráva pro příjemce"

    [format]
    delimiter = ";"
    decimal_separator = ","
    thousands_separator = " "
    date_format = "%d.%m.%Y"
    default_account = "CZ6508000000192000145399"

Without a map the columns are expected under the keys' own names and the delimiter is sniffed.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ispbill.domain.bank import StatementLine
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

COLUMN_KEYS = (
    "date",
    "amount",
    "credit",
    "debit",
    "currency",
    "reference",
    "counterparty_iban",
    "counterparty_name",
    "transaction_id",
    "description",
    "account",
)
FORMAT_KEYS = (
    "delimiter",
    "decimal_separator",
    "thousands_separator",
    "date_format",
    "encoding",
    "default_currency",
    "default_account",
    "skip_rows",
)
_SPACES = re.compile(r"[\s\u00a0\u202f]")


@dataclass(frozen=True)
class ColumnMap:
    columns: Mapping[str, str] = field(default_factory=lambda: {k: k for k in COLUMN_KEYS})
    delimiter: str | None = None  # None: sniffed from the file
    decimal_separator: str = "."
    thousands_separator: str = ""
    date_format: str = "%Y-%m-%d"
    encoding: str = "utf-8-sig"
    default_currency: str | None = None
    default_account: str | None = None
    skip_rows: int = 0

    @classmethod
    def load(cls, path: Path) -> ColumnMap:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError("column_map", f"cannot read {path}: {exc}") from None
        unknown = set(data) - {"columns", "format"}
        if unknown:
            raise ValidationError(
                "column_map", f"unknown table(s) {sorted(unknown)}; use [columns] and [format]"
            )
        pairs = {**data.get("columns", {}), **data.get("format", {})}
        for key in data.get("columns", {}):
            if key not in COLUMN_KEYS:
                raise ValidationError(
                    f"column_map.columns.{key}", f"unknown column; known: {', '.join(COLUMN_KEYS)}"
                )
        return cls(columns={}).with_values(pairs)

    def with_values(self, pairs: Mapping[str, Any]) -> ColumnMap:
        """This map with columns or format options replaced (``--map amount=Objem``)."""
        columns = dict(self.columns)
        options: dict[str, Any] = {}
        for key, value in pairs.items():
            if key in COLUMN_KEYS:
                columns[key] = str(value)
            elif key == "skip_rows":
                try:
                    options[key] = int(value)
                except ValueError:
                    raise ValidationError(
                        "column_map.skip_rows", "must be a whole number"
                    ) from None
            elif key in FORMAT_KEYS:
                options[key] = str(value)
            else:
                known = ", ".join((*COLUMN_KEYS, *FORMAT_KEYS))
                raise ValidationError(f"column_map.{key}", f"unknown key; known: {known}")
        return replace(self, columns=columns, **options)

    @classmethod
    def from_pairs(cls, base: ColumnMap | None, pairs: Sequence[str]) -> ColumnMap:
        parsed: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValidationError(
                    "map", f"{pair!r} must be written key=value, e.g. amount=Objem"
                )
            parsed[key.strip()] = value
        return (base or cls()).with_values(parsed)


def looks_like(data: bytes) -> bool:
    return True  # the fallback: anything that is neither XML nor MT940


def parse(data: bytes, column_map: ColumnMap | None = None) -> list[StatementLine]:
    cmap = column_map or ColumnMap()
    try:
        text = data.decode(cmap.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise ValidationError("encoding", f"the file is not {cmap.encoding} text ({exc})") from None
    body = "\n".join(text.splitlines()[cmap.skip_rows :])
    delimiter = cmap.delimiter or _sniff(body)
    reader = csv.DictReader(io.StringIO(body), delimiter=delimiter)
    header = reader.fieldnames or []
    _check_columns(cmap, header)
    lines: list[StatementLine] = []
    for row_number, row in enumerate(reader, start=2 + cmap.skip_rows):
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line, often at the end of an export
        lines.append(_line(len(lines), row_number, row, cmap))
    return lines


def _sniff(body: str) -> str:
    try:
        return csv.Sniffer().sniff(body[:8192], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _check_columns(cmap: ColumnMap, header: Sequence[str]) -> None:
    present = set(header)
    if "date" not in cmap.columns:
        raise ValidationError("column_map.date", "required: the column with the booking date")
    if not ({"amount", "credit", "debit"} & set(cmap.columns)):
        raise ValidationError("column_map.amount", "required: an amount column (or credit/debit)")
    required = ["date"] + [k for k in ("amount",) if k in cmap.columns]
    if "amount" not in cmap.columns:
        required += [k for k in ("credit", "debit") if k in cmap.columns]
    for key in required:
        if cmap.columns[key] not in present:
            raise ValidationError(
                f"column_map.{key}",
                f"column {cmap.columns[key]!r} is not in the file's header ({', '.join(header)})",
            )
    has_currency = cmap.columns.get("currency") in present
    if not has_currency and not cmap.default_currency:
        raise ValidationError(
            "column_map.currency", "no currency column in the file: set default_currency"
        )


def _cell(row: Mapping[str, str | None], cmap: ColumnMap, key: str) -> str | None:
    name = cmap.columns.get(key)
    if name is None:
        return None
    value = (row.get(name) or "").strip()
    return value or None


def _line(
    index: int, row_number: int, row: Mapping[str, str | None], cmap: ColumnMap
) -> StatementLine:
    where = f"row {row_number}"
    currency = _cell(row, cmap, "currency") or cmap.default_currency
    assert currency is not None  # _check_columns
    amount_text = _cell(row, cmap, "amount")
    if amount_text is not None:
        amount = _money(amount_text, currency, cmap, f"{where}.amount")
    else:
        credit = _cell(row, cmap, "credit")
        debit = _cell(row, cmap, "debit")
        if credit is None and debit is None:
            raise ValidationError(f"{where}.amount", "has no amount")
        amount = _money(credit or "0", currency, cmap, f"{where}.credit") - abs(
            _money(debit or "0", currency, cmap, f"{where}.debit")
        )
    booked_text = _cell(row, cmap, "date")
    if booked_text is None:
        raise ValidationError(f"{where}.date", "has no date")
    try:
        booked = datetime.strptime(booked_text, cmap.date_format).date()  # noqa: DTZ007 (a date)
    except ValueError:
        raise ValidationError(
            f"{where}.date", f"{booked_text!r} does not match the date format {cmap.date_format!r}"
        ) from None
    raw = {name: value for name, value in row.items() if name and value}
    return StatementLine(
        index=index,
        booked_on=date(booked.year, booked.month, booked.day),
        amount=amount,
        account=_cell(row, cmap, "account") or cmap.default_account,
        bank_transaction_id=_cell(row, cmap, "transaction_id"),
        reference=_cell(row, cmap, "reference"),
        counterparty_iban=_cell(row, cmap, "counterparty_iban"),
        counterparty_name=_cell(row, cmap, "counterparty_name"),
        description=_cell(row, cmap, "description") or "",
        raw={str(k): str(v) for k, v in raw.items()},
    )


def _money(text: str, currency: str, cmap: ColumnMap, field_name: str) -> Money:
    value = _SPACES.sub("", text)
    if cmap.thousands_separator and cmap.thousands_separator.strip():
        value = value.replace(cmap.thousands_separator, "")
    if cmap.decimal_separator != ".":
        value = value.replace(cmap.decimal_separator, ".")
    return Money.from_major(value, currency, field=field_name)
