"""The customer record and its customer class, as PortaBilling's customer form defines them.

PortaBilling seed: a customer has "a unique name", a business model, a customer class that
"defines a set of parameters shared among a certain category of customers ... (e.g., grace
period, invoice template, taxation, notification list)", a billing period and its timezone,
"balance control: either prepaid ... or postpaid", a currency, a "credit limit (only for postpaid
customers)", "available funds: an initial customer payment (only for prepaid customers)" and
"custom data: additional fields [that] appear if you have assigned a mandatory custom field via
a customer class". Splynx adds the prepaid "minimum balance" (0 by default).

This module only decides whether a set of customer terms is valid and how class defaults and
customer overrides combine; storage and uniqueness live in the adapters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from babel import Locale, UnknownLocaleError

from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import check_amount_range
from ispbill.domain.money import Money

NAME_MAX = 200
TEMPLATE_MAX = 100
LOCALE_MAX = 16
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ADDRESS_MAX = 500
NOTES_MAX = 5000
CONTACTS_MAX = 10
# E.164 allows 15 digits after the country code; spaces, dots, dashes and brackets are kept as
# typed (operators copy numbers from contracts) but the digits must count 6 to 15.
PHONE = re.compile(r"^\+?[0-9 ().\-/]{6,30}$")
# A VAT id (EU VIES and most others): the 2-letter country prefix, then 2 to 13 letters/digits.
VAT_ID = re.compile(r"^[A-Z]{2}[A-Z0-9]{2,13}$")
REGISTRATION_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,63}$")
MICRODEGREES = 1_000_000
COORDINATE = re.compile(r"^([+-]?)([0-9]{1,3})(?:\.([0-9]{1,6}))?$")


class BalanceControl(StrEnum):
    PREPAID = "prepaid"
    POSTPAID = "postpaid"


class InvoicingMode(StrEnum):
    """UISP "invoicing type": forward charges a period at its start, backward at its end."""

    FORWARD = "forward"
    BACKWARD = "backward"


class BusinessModel(StrEnum):
    """What kind of service the customer buys (PortaBilling "business model")."""

    INTERNET_ACCESS = "internet_access"
    HOTSPOT = "hotspot"
    BUSINESS_LINK = "business_link"
    WHOLESALE = "wholesale"


class ContactKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"


class CustomerStatus(StrEnum):
    """Splynx: a customer deactivated past the deactivation period becomes inactive."""

    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class CustomField:
    """A custom data field a customer class asks for (e.g. a tax code or a driver's licence)."""

    name: str
    required: bool = True
    pattern: str | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not FIELD_NAME.match(self.name):
            raise ValidationError(
                "custom_fields", f"field name {self.name!r} must be lower_snake_case"
            )
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValidationError(
                    "custom_fields", f"pattern of {self.name!r} is not a valid regex: {exc}"
                ) from exc

    def check(self, value: str | None) -> None:
        """Refuse a missing required value or one that does not match the pattern."""
        where = f"custom_data.{self.name}"
        if value is None or value == "":
            if self.required:
                raise ValidationError(where, "required by the customer class")
            return
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ValidationError(where, f"must match {self.pattern}")


@dataclass(frozen=True, slots=True)
class ClassDefaults:
    """What a customer class provides; each value may be overridden per customer."""

    grace_days: int = 0
    invoice_template: str = "default"
    tax_profile_id: int | None = None
    notification_emails: tuple[str, ...] = ()
    custom_fields: tuple[CustomField, ...] = ()

    def __post_init__(self) -> None:
        validate_grace_days(self.grace_days)
        validate_emails(self.notification_emails)
        names = [f.name for f in self.custom_fields]
        if len(names) != len(set(names)):
            raise ValidationError("custom_fields", "field names must be unique")


@dataclass(frozen=True, slots=True)
class CustomerOverrides:
    """Per-customer values that win over the class defaults when set."""

    grace_days: int | None = None
    invoice_template: str | None = None
    tax_profile_id: int | None = None
    notification_emails: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class EffectiveTerms:
    grace_days: int
    invoice_template: str
    tax_profile_id: int | None
    notification_emails: tuple[str, ...]


T = TypeVar("T")


def _pick(own: T | None, inherited: T) -> T:
    return inherited if own is None else own


def effective_terms(defaults: ClassDefaults, overrides: CustomerOverrides) -> EffectiveTerms:
    """Class values are defaults; a customer's own value, when set, wins (PortaBilling)."""

    return EffectiveTerms(
        grace_days=_pick(overrides.grace_days, defaults.grace_days),
        invoice_template=_pick(overrides.invoice_template, defaults.invoice_template),
        tax_profile_id=_pick(overrides.tax_profile_id, defaults.tax_profile_id),
        notification_emails=_pick(overrides.notification_emails, defaults.notification_emails),
    )


@dataclass(frozen=True, slots=True)
class BalanceTerms:
    """The money side of a customer: balance control and its limits, all in one currency."""

    balance_control: BalanceControl
    currency: str
    credit_limit: Money | None = None
    minimum_balance: Money | None = None
    available_funds: Money | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prepaid = self.balance_control is BalanceControl.PREPAID
        if self.credit_limit is not None:
            if prepaid:
                raise ValidationError("credit_limit", "only postpaid customers have a credit limit")
            _same_currency("credit_limit", self.credit_limit, self.currency)
            if self.credit_limit.is_negative:
                raise ValidationError("credit_limit", "must not be negative")
            check_amount_range(self.credit_limit, "credit_limit")
        if self.minimum_balance is not None and not self.minimum_balance.is_zero:
            if not prepaid:
                raise ValidationError(
                    "minimum_balance", "only prepaid customers have a minimum balance"
                )
            _same_currency("minimum_balance", self.minimum_balance, self.currency)
            check_amount_range(self.minimum_balance, "minimum_balance")
        if self.available_funds is not None and not self.available_funds.is_zero:
            if not prepaid:
                raise ValidationError(
                    "available_funds", "only prepaid customers have initial available funds"
                )
            _same_currency("available_funds", self.available_funds, self.currency)
            if self.available_funds.is_negative:
                raise ValidationError("available_funds", "must not be negative")
            check_amount_range(self.available_funds, "available_funds")


def _same_currency(field_name: str, amount: Money, currency: str) -> None:
    if amount.currency != currency:
        raise ValidationError(
            field_name, f"must be in the customer's currency {currency}, not {amount.currency}"
        )


def validate_name(name: str, field_name: str = "name", max_length: int = NAME_MAX) -> str:
    """Names are trimmed, non-empty and short enough to print on an invoice (and to store)."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationError(field_name, "must not be empty")
    if len(cleaned) > max_length:
        raise ValidationError(field_name, f"must be at most {max_length} characters")
    if any(not c.isprintable() for c in cleaned):  # NUL is refused by PostgreSQL, not SQLite
        raise ValidationError(field_name, "must not contain control characters")
    return cleaned


def validate_locale(text: str) -> str:
    """A CLDR locale identifier such as ``en_US`` or ``cs_CZ``, in its canonical spelling."""
    try:
        canonical = str(Locale.parse(text.strip()))
    except (ValueError, TypeError, UnknownLocaleError):
        canonical = ""
    if not canonical or len(canonical) > LOCALE_MAX:
        raise ValidationError("locale", f"unknown locale {text!r}; use one such as en_US or cs_CZ")
    return canonical


def validate_grace_days(days: int) -> int:
    if days < 0 or days > 365:
        raise ValidationError("grace_days", "must be between 0 and 365")
    return days


def validate_emails(emails: Sequence[str]) -> tuple[str, ...]:
    for email in emails:
        if not EMAIL.match(email):
            raise ValidationError("notification_emails", f"{email!r} is not an e-mail address")
    return tuple(emails)


def check_custom_data(fields: Sequence[CustomField], data: Mapping[str, str]) -> dict[str, str]:
    """Validate a customer's custom data against the fields its class asks for.

    Fields the class does not declare are kept: operators add ad-hoc data too.
    """
    for custom_field in fields:
        custom_field.check(data.get(custom_field.name))
    for key in data:
        if not FIELD_NAME.match(key):
            raise ValidationError(f"custom_data.{key}", "field names must be lower_snake_case")
    return dict(data)


def validate_text(value: str, field_name: str, max_length: int) -> str | None:
    """Free text kept as typed (line breaks allowed), trimmed; empty means none."""
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > max_length:
        raise ValidationError(field_name, f"must be at most {max_length} characters")
    if any(not (c.isprintable() or c in "\n\t") for c in cleaned.replace("\r\n", "\n")):
        raise ValidationError(field_name, "must not contain control characters")
    return cleaned.replace("\r\n", "\n")


def validate_phone(value: str, field_name: str = "phones") -> str:
    cleaned = " ".join(value.split())
    digits = sum(c.isdigit() for c in cleaned)
    if not PHONE.match(cleaned) or not 6 <= digits <= 15:
        raise ValidationError(
            field_name, f"{value!r} is not a phone number (6 to 15 digits, optional leading +)"
        )
    return cleaned


def validate_contacts(
    emails: Sequence[str], phones: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A customer's contact e-mails and phones, the first of each kind the primary one."""
    checked: list[tuple[str, ...]] = []
    for field_name, values in (("emails", emails), ("phones", phones)):
        if len(values) > CONTACTS_MAX:
            raise ValidationError(field_name, f"at most {CONTACTS_MAX}")
        cleaned = []
        for value in values:
            if field_name == "emails":
                address = value.strip()
                if not EMAIL.match(address) or len(address) > 254:
                    raise ValidationError("emails", f"{value!r} is not an e-mail address")
                cleaned.append(address)
            else:
                cleaned.append(validate_phone(value))
        folded = [c.lower() for c in cleaned]
        if len(set(folded)) != len(folded):
            raise ValidationError(field_name, "each may be given only once")
        checked.append(tuple(cleaned))
    return checked[0], checked[1]


def validate_vat_id(value: str) -> str | None:
    """``CZ12345678``: a 2-letter country prefix and 2 to 13 letters or digits (spaces and dots
    as typed on letterheads are dropped)."""
    cleaned = "".join(c for c in value.upper() if c not in " .-")
    if not cleaned:
        return None
    if not VAT_ID.match(cleaned):
        raise ValidationError(
            "vat_id", f"{value!r}: expected a 2-letter country prefix and 2 to 13 letters or digits"
        )
    return cleaned


def validate_registration_number(value: str) -> str | None:
    cleaned = value.strip()
    if not cleaned:
        return None
    if not REGISTRATION_NUMBER.match(cleaned):
        raise ValidationError(
            "company_registration_number",
            f"{value!r}: letters, digits, spaces and . / - only, at most 64 characters",
        )
    return cleaned


def _microdegrees(text: str, field_name: str, limit: int) -> int:
    match = COORDINATE.match(text.strip())
    if match is None:
        raise ValidationError(field_name, f"{text!r} is not decimal degrees (up to 6 decimals)")
    sign, whole, fraction = match.groups()
    value = int(whole) * MICRODEGREES + int((fraction or "").ljust(6, "0"))
    value = -value if sign == "-" else value
    if not -limit * MICRODEGREES <= value <= limit * MICRODEGREES:
        raise ValidationError(field_name, f"must be between -{limit} and {limit}")
    return value


def parse_gps(text: str) -> tuple[int, int] | None:
    """``LAT,LON`` in decimal degrees (``50.087451,14.420671``) as integer microdegrees;
    latitude within -90..90, longitude within -180..180. Empty means none."""
    if not text.strip():
        return None
    lat, sep, lon = text.partition(",")
    if not sep:
        raise ValidationError("service_gps", f"{text!r}: expected LAT,LON in decimal degrees")
    return (
        _microdegrees(lat, "service_gps.latitude", 90),
        _microdegrees(lon, "service_gps.longitude", 180),
    )


def format_gps(latitude_microdeg: int | None, longitude_microdeg: int | None) -> str | None:
    if latitude_microdeg is None or longitude_microdeg is None:
        return None

    def degrees(value: int) -> str:
        sign = "-" if value < 0 else ""
        whole, fraction = divmod(abs(value), MICRODEGREES)
        return f"{sign}{whole}.{fraction:06d}"

    return f"{degrees(latitude_microdeg)},{degrees(longitude_microdeg)}"
