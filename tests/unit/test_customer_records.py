"""The customer record's rules (issue 17): GPS in microdegrees within range, VAT ids with a
country prefix, phones, contacts (the first primary, no duplicates), the 'every N' cycle."""

from __future__ import annotations

import pytest

from ispbill.domain.calendar import CycleKind, parse_customer_cycle
from ispbill.domain.customers import (
    format_gps,
    parse_gps,
    validate_contacts,
    validate_phone,
    validate_vat_id,
)
from ispbill.domain.errors import ValidationError


def test_gps_is_kept_in_integer_microdegrees() -> None:
    assert parse_gps("50.087451,14.420671") == (50_087_451, 14_420_671)
    assert parse_gps(" -33.8688 , 151.2093 ") == (-33_868_800, 151_209_300)
    assert parse_gps("90,-180") == (90_000_000, -180_000_000)
    assert parse_gps("") is None
    assert format_gps(-33_868_800, 151_209_300) == "-33.868800,151.209300"
    assert format_gps(-500_000, 1) == "-0.500000,0.000001"
    assert format_gps(None, None) is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("90.000001,0", "service_gps.latitude"),
        ("-91,0", "service_gps.latitude"),
        ("0,180.5", "service_gps.longitude"),
        ("0,1e2", "service_gps.longitude"),
        ("50.1234567,0", "service_gps.latitude"),  # beyond a micro-degree
        ("50", "service_gps"),
    ],
)
def test_gps_out_of_range_or_malformed_is_refused(text: str, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_gps(text)
    assert refused.value.field == field


def test_vat_ids_need_a_country_prefix() -> None:
    assert validate_vat_id("cz 1234 5678") == "CZ12345678"
    assert validate_vat_id("DE123456789") == "DE123456789"
    assert validate_vat_id("  ") is None
    for bad in ("12345678", "C12345", "CZ1", "CZ123456789012345", "CZ12_34"):
        with pytest.raises(ValidationError, match=r"^vat_id: "):
            validate_vat_id(bad)


def test_phones_and_contacts() -> None:
    assert validate_phone("+420  601 123 456") == "+420 601 123 456"
    for bad in ("12345", "call me", "+1" + "2" * 16):
        with pytest.raises(ValidationError, match=r"^phones: "):
            validate_phone(bad)
    emails, _ = validate_contacts(["a@x.test", "b@x.test"], ["+420601123456"])
    assert emails == ("a@x.test", "b@x.test")
    with pytest.raises(ValidationError, match=r"^emails: each may be given only once"):
        validate_contacts(["a@x.test", "A@X.test"], [])


def test_an_every_n_cycle_needs_its_n() -> None:
    assert parse_customer_cycle("every_n_days", 7) == (CycleKind.EVERY_N_DAYS, 7)
    assert parse_customer_cycle("every_10_days") == (CycleKind.EVERY_N_DAYS, 10)
    assert parse_customer_cycle("3m") == (CycleKind.EVERY_N_MONTHS, 3)
    assert parse_customer_cycle("monthly") == (CycleKind.MONTHLY, 1)
    for text, n in (("every_n_days", None), ("monthly", 2), ("every_5_days", 6)):
        with pytest.raises(ValidationError, match=r"^cycle_n: "):
            parse_customer_cycle(text, n)
