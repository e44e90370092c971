"""ISO 20022 camt.053 (bank-to-customer statement) read with ``xmlschema`` and the official XSDs.

The file's namespace names its message version; the matching official schema (shipped in
``xsd/``, unmodified from the ISO 20022 catalogue) validates it and decodes it into plain data
with exact ``Decimal`` amounts. A file that breaks its schema is refused with the path and the
rule, before anything is written. Entities and remote resources are never loaded (``defuse``,
``allow="none"``): a statement is untrusted input.

Only booked entries (status BOOK) are payments; a batch booking (one entry, several
``TxDtls``) gives one line per transaction, each with its own amount and reference.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema

from ispbill.domain.bank import StatementLine
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money

XSD_DIR = Path(__file__).parent / "xsd"
NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053."
FIELD = "file"


def supported_versions() -> list[str]:
    return sorted(p.stem for p in XSD_DIR.glob("camt.053.*.xsd"))


@cache
def _schema(version: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_DIR / f"{version}.xsd"))


def looks_like(data: bytes) -> bool:
    head = data[:4096]
    return NAMESPACE_PREFIX.encode() in head or b"BkToCstmrStmt" in head


def parse(data: bytes) -> list[StatementLine]:
    """Every booked entry of every statement in the document, in file order."""
    try:
        resource = xmlschema.XMLResource(io.BytesIO(data), allow="none", defuse="always")
    except (xmlschema.XMLSchemaException, SyntaxError) as exc:
        raise ValidationError(FIELD, f"not a readable XML document ({exc})") from None
    namespace = resource.namespace
    if not namespace.startswith(NAMESPACE_PREFIX):
        raise ValidationError(
            FIELD, f"not a camt.053 statement (root namespace {namespace or 'none'!r})"
        )
    version = namespace.removeprefix("urn:iso:std:iso:20022:tech:xsd:")
    if version not in supported_versions():
        raise ValidationError(
            FIELD, f"{version} is not supported; supported: {', '.join(supported_versions())}"
        )
    schema = _schema(version)
    error = next(iter(schema.iter_errors(resource)), None)
    if error is not None:
        raise ValidationError(FIELD, f"breaks the {version} schema at {error.path}: {error.reason}")
    document = schema.to_dict(resource)
    assert isinstance(document, dict)
    lines: list[StatementLine] = []
    for statement in _list(document["BkToCstmrStmt"].get("Stmt")):
        lines.extend(_statement_lines(statement, start=len(lines)))
    return lines


def _statement_lines(statement: Mapping[str, Any], *, start: int) -> Iterator[StatementLine]:
    account = _text(statement, "Acct", "Id", "IBAN") or _text(statement, "Acct", "Id", "Othr", "Id")
    statement_id = _text(statement, "Id")
    index = start
    for entry in _list(statement.get("Ntry")):
        status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
        if status != "BOOK":
            continue  # pending or informational: booked later, in a later statement
        details = [tx for d in _list(entry.get("NtryDtls")) for tx in _list(d.get("TxDtls"))]
        entry_id = _text(entry, "AcctSvcrRef") or (
            f"{statement_id}/{_text(entry, 'NtryRef')}" if _text(entry, "NtryRef") else None
        )
        if len(details) <= 1:
            tx = details[0] if details else {}
            amount = _amount(entry.get("Amt"), _text(entry, "CdtDbtInd"))
            yield _line(index, account, entry, tx, amount, entry_id)
            index += 1
            continue
        for part, tx in enumerate(details, start=1):
            amount_node = tx.get("Amt") or _node(tx, "AmtDtls", "TxAmt", "Amt") or entry.get("Amt")
            amount = _amount(amount_node, _text(tx, "CdtDbtInd") or _text(entry, "CdtDbtInd"))
            tx_id = _text(tx, "Refs", "AcctSvcrRef") or (f"{entry_id}/{part}" if entry_id else None)
            yield _line(index, account, entry, tx, amount, tx_id)
            index += 1


def _line(
    index: int,
    account: str | None,
    entry: Mapping[str, Any],
    tx: Mapping[str, Any],
    amount: Money,
    transaction_id: str | None,
) -> StatementLine:
    incoming = amount.is_positive
    party, party_account = ("Dbtr", "DbtrAcct") if incoming else ("Cdtr", "CdtrAcct")
    name = _text(tx, "RltdPties", party, "Nm") or _text(tx, "RltdPties", party, "Pty", "Nm")
    iban = _text(tx, "RltdPties", party_account, "Id", "IBAN")
    structured = _text(tx, "RmtInf", "Strd", "CdtrRefInf", "Ref")
    end_to_end = _text(tx, "Refs", "EndToEndId")
    unstructured = [str(u) for u in _list(_node(tx, "RmtInf", "Ustrd"))]
    description = " ".join([*unstructured, _text(entry, "AddtlNtryInf") or ""]).strip()
    booked = _text(entry, "BookgDt", "Dt") or (_text(entry, "BookgDt", "DtTm") or "")[:10]
    raw = {
        "entry_ref": _text(entry, "NtryRef") or "",
        "end_to_end_id": end_to_end or "",
        "structured_reference": structured or "",
        "bank_transaction_code": "/".join(
            filter(
                None,
                (
                    _text(entry, "BkTxCd", "Domn", "Cd"),
                    _text(entry, "BkTxCd", "Domn", "Fmly", "Cd"),
                    _text(entry, "BkTxCd", "Domn", "Fmly", "SubFmlyCd"),
                ),
            )
        ),
    }
    return StatementLine(
        index=index,
        booked_on=_date(booked),
        amount=amount,
        account=account,
        bank_transaction_id=transaction_id,
        reference=structured or (end_to_end if end_to_end != "NOTPROVIDED" else None),
        counterparty_iban=iban,
        counterparty_name=name,
        description=description,
        raw=raw,
    )


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _node(data: Any, *path: str) -> Any:
    for key in path:
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _text(data: Any, *path: str) -> str | None:
    value = _node(data, *path)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, Mapping):
        return None
    text = str(value).strip()
    return text or None


def _amount(node: Any, indicator: str | None) -> Money:
    if not isinstance(node, Mapping) or not isinstance(node.get("$"), Decimal):
        raise ValidationError(FIELD, "an entry has no amount")
    value = Money.from_major(node["$"], str(node["@Ccy"]), field="amount")
    if indicator not in ("CRDT", "DBIT"):
        raise ValidationError(
            FIELD, f"credit/debit indicator {indicator!r} is neither CRDT nor DBIT"
        )
    return value if indicator == "CRDT" else -value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValidationError(FIELD, f"booking date {text!r} is not a date") from None
