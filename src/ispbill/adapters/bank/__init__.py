"""Bank statements in the formats banks export, read into format-blind ``StatementLine``s.

CSV (stdlib ``csv`` with an operator's column map), ISO 20022 camt.053 (``xmlschema`` with the
official XSDs in ``xsd/``) and SWIFT MT940 (``mt-940``). ``read_statement`` picks the reader
from the format given or, with ``auto``, from the file's first bytes.
"""

from __future__ import annotations

from ispbill.adapters.bank import camt053, csv_file, swift_mt940
from ispbill.adapters.bank.csv_file import ColumnMap
from ispbill.domain.bank import StatementFormat, StatementLine
from ispbill.domain.errors import ValidationError

AUTO = "auto"
FORMAT_CHOICES = (AUTO, *(f.value for f in StatementFormat))


def detect(data: bytes) -> StatementFormat:
    if camt053.looks_like(data):
        return StatementFormat.CAMT053
    if swift_mt940.looks_like(data):
        return StatementFormat.MT940
    return StatementFormat.CSV


def read_statement(
    data: bytes, *, format: str = AUTO, column_map: ColumnMap | None = None
) -> tuple[StatementFormat, list[StatementLine]]:
    if format not in FORMAT_CHOICES:
        raise ValidationError("format", f"must be one of: {', '.join(FORMAT_CHOICES)}")
    if not data.strip():
        raise ValidationError("file", "is empty")
    kind = detect(data) if format == AUTO else StatementFormat(format)
    if kind is StatementFormat.CAMT053:
        return kind, camt053.parse(data)
    if kind is StatementFormat.MT940:
        return kind, swift_mt940.parse(data)
    return kind, csv_file.parse(data, column_map)


__all__ = ["FORMAT_CHOICES", "ColumnMap", "StatementFormat", "StatementLine", "read_statement"]
