"""The record an ISP keeps about a customer beside its billing terms (issue 17): contact e-mails
and phones (the first of each kind primary), billing and service addresses, the service
location's GPS, the company's registration number and VAT id, internal notes.

Shared by creating a customer (``customer_accounts``) and editing one (``customer_edits``), so
both validate alike. In a ``ContactRecord`` a field left ``None`` is not touched; an empty text
or an empty list clears it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ispbill.adapters.db.models import Customer, CustomerContact
from ispbill.domain.customers import (
    ADDRESS_MAX,
    NOTES_MAX,
    ContactKind,
    format_gps,
    parse_gps,
    validate_contacts,
    validate_registration_number,
    validate_text,
    validate_vat_id,
)

TEXT_FIELDS = (
    "billing_address",
    "service_address",
    "company_registration_number",
    "vat_id",
    "internal_notes",
)


@dataclass(frozen=True)
class ContactRecord:
    emails: Sequence[str] | None = None
    phones: Sequence[str] | None = None
    billing_address: str | None = None
    service_address: str | None = None
    service_gps: str | None = None
    company_registration_number: str | None = None
    vat_id: str | None = None
    internal_notes: str | None = None


def checked_record(record: ContactRecord, customer: Customer | None = None) -> dict[str, Any]:
    """The given fields, validated, as ``{field: value}`` (``emails``/``phones`` as tuples,
    ``service_gps`` as a (lat, lon) pair in microdegrees or None). Raises before any write."""
    values: dict[str, Any] = {}
    if record.emails is not None or record.phones is not None:
        current_emails, current_phones = contacts_of(customer) if customer else ((), ())
        emails, phones = validate_contacts(
            record.emails if record.emails is not None else current_emails,
            record.phones if record.phones is not None else current_phones,
        )
        if record.emails is not None:
            values["emails"] = emails
        if record.phones is not None:
            values["phones"] = phones
    if record.billing_address is not None:
        values["billing_address"] = validate_text(
            record.billing_address, "billing_address", ADDRESS_MAX
        )
    if record.service_address is not None:
        values["service_address"] = validate_text(
            record.service_address, "service_address", ADDRESS_MAX
        )
    if record.service_gps is not None:
        values["service_gps"] = parse_gps(record.service_gps)
    if record.company_registration_number is not None:
        values["company_registration_number"] = validate_registration_number(
            record.company_registration_number
        )
    if record.vat_id is not None:
        values["vat_id"] = validate_vat_id(record.vat_id)
    if record.internal_notes is not None:
        values["internal_notes"] = validate_text(record.internal_notes, "internal_notes", NOTES_MAX)
    return values


def contacts_of(customer: Customer) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The customer's e-mails and phones, each kind's primary first."""

    def of(kind: ContactKind) -> tuple[str, ...]:
        rows = [c for c in customer.contacts if c.kind == kind.value]
        rows.sort(key=lambda c: (not c.is_primary, c.id or 0))
        return tuple(c.value for c in rows)

    return of(ContactKind.EMAIL), of(ContactKind.PHONE)


def record_values(customer: Customer) -> dict[str, Any]:
    """The record as shown and as an edit's event compares it (plain JSON values)."""
    emails, phones = contacts_of(customer)
    return {
        "emails": list(emails),
        "phones": list(phones),
        "billing_address": customer.billing_address,
        "service_address": customer.service_address,
        "service_gps": format_gps(
            customer.service_latitude_microdeg, customer.service_longitude_microdeg
        ),
        "company_registration_number": customer.company_registration_number,
        "vat_id": customer.vat_id,
        "internal_notes": customer.internal_notes,
    }


def apply_record(customer: Customer, values: dict[str, Any]) -> None:
    """Write checked values onto the customer (its contacts reuse the rows kept, so a unique
    (customer, kind, value) is never inserted before the old row goes)."""
    for name in TEXT_FIELDS:
        if name in values:
            setattr(customer, name, values[name])
    if "service_gps" in values:
        gps = values["service_gps"]
        customer.service_latitude_microdeg = gps[0] if gps else None
        customer.service_longitude_microdeg = gps[1] if gps else None
    for kind, key in ((ContactKind.EMAIL, "emails"), (ContactKind.PHONE, "phones")):
        if key not in values:
            continue
        existing = {c.value.lower(): c for c in customer.contacts if c.kind == kind.value}
        kept: list[CustomerContact] = []
        for position, value in enumerate(values[key]):
            row = existing.pop(value.lower(), None) or CustomerContact(kind=kind.value)
            row.value, row.is_primary = value, position == 0
            kept.append(row)
        others = [c for c in customer.contacts if c.kind != kind.value]
        customer.contacts = others + kept
