"""Refill-card codes without a database: entropy, the check symbol, reading what people type,
hashing, the redemption rule and the throttle."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain import refill
from ispbill.domain.errors import ValidationError
from ispbill.domain.refill import CardFacts, CardStatus, ThrottlePolicy

KEY = b"unit-test-key-0123456789abcdef"
NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
payloads = st.integers(min_value=0, max_value=2 ** (5 * refill.RANDOM_LENGTH) - 1)


def code_of(number: int) -> str:
    return refill.generate_code(lambda bits: number & ((1 << bits) - 1))


# --- the code ---------------------------------------------------------------------------------


def test_entropy_is_at_least_60_bits() -> None:
    assert len(set(refill.ALPHABET)) == len(refill.ALPHABET) == 32
    assert not set("ILOU") & set(refill.ALPHABET)  # nothing to confuse with 1 and 0
    bits = refill.RANDOM_LENGTH * math.log2(len(refill.ALPHABET))
    assert bits == refill.ENTROPY_BITS == refill.entropy_bits(32, 15) == 75
    assert bits >= refill.MIN_ENTROPY_BITS == 60
    assert refill.CODE_LENGTH == refill.RANDOM_LENGTH + 1  # one check symbol on top


def test_generation_uses_the_injected_source_and_all_of_its_bits() -> None:
    asked: list[int] = []

    def source(bits: int) -> int:
        asked.append(bits)
        return 0

    assert refill.generate_code(source) == "0" * 16
    assert asked == [75]
    top = code_of(2**75 - 1)
    assert top[:15] == "Z" * 15
    assert refill.has_valid_check(top)
    rng = random.Random(7)
    codes = {refill.generate_code(rng.getrandbits) for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == 16 and set(c) <= set(refill.ALPHABET) for c in codes)
    assert len(refill.generate_code()) == 16  # secrets by default


@given(payloads)
def test_every_generated_code_checks_out(number: int) -> None:
    assert refill.has_valid_check(code_of(number))


# --- the check symbol -------------------------------------------------------------------------


@given(payloads)
def test_every_single_substitution_is_caught(number: int) -> None:
    code = code_of(number)
    for position in range(len(code)):
        for symbol in refill.ALPHABET:
            if symbol != code[position]:
                typo = code[:position] + symbol + code[position + 1 :]
                assert not refill.has_valid_check(typo), (code, typo)


@given(payloads)
def test_every_adjacent_transposition_is_caught(number: int) -> None:
    code = code_of(number)
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            typo = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not refill.has_valid_check(typo), (code, typo)


def test_transpositions_are_caught_from_every_running_value() -> None:
    """Exhaustive over the quasigroup: any running value (reached by one leading symbol), any two
    different symbols, swapped before the check symbol or with it."""
    for lead in refill.ALPHABET:
        for x in refill.ALPHABET:
            check = refill.check_symbol(lead + x)
            if check != x:  # the last symbol swapped with the check symbol
                assert not refill.has_valid_check(lead + check + x)
            for y in refill.ALPHABET:
                if x == y:
                    continue
                payload = lead + x + y
                check = refill.check_symbol(payload)
                assert not refill.has_valid_check(lead + y + x + check)


def test_the_check_symbol_is_always_one_of_the_alphabet() -> None:
    for lead in refill.ALPHABET:
        for x in refill.ALPHABET:
            assert refill.check_symbol(lead + x) in refill.ALPHABET


# --- reading and printing ---------------------------------------------------------------------


def test_grouping_for_print() -> None:
    code = code_of(123456789)
    printed = refill.group(code)
    assert printed == "-".join([code[0:4], code[4:8], code[8:12], code[12:16]])
    assert [len(part) for part in printed.split("-")] == [4, 4, 4, 4]


@pytest.mark.parametrize(
    "typed",
    [
        "ABCD-EFGH-JKMN-PQR{c}",
        "abcd efgh jkmn pqr{c}",
        "  ABCDEFGHJKMNPQR{c}\n",
        "abcd–efgh—jkmn pqr{c}",  # en and em dashes pasted from a document
        "ABCD.EFGH.JKMN.PQR{c}",
    ],
)
def test_case_separators_and_dashes_are_ignored(typed: str) -> None:
    check = refill.check_symbol("ABCDEFGHJKMNPQR")
    assert refill.parse_code(typed.format(c=check.lower() if typed[0] == "a" else check)) == (
        "ABCDEFGHJKMNPQR" + check
    )


def test_crockford_aliases_read_as_digits() -> None:
    code = "0" * 5 + "1" * 5 + "0" * 5
    code += refill.check_symbol(code)
    assert refill.parse_code("OoOoO-IiLlI-00000-" + code[15]) == code


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("ABCD-EFGH-JKMN-PQR", "16 letters and digits, 15 were given"),
        ("ABCD-EFGH-JKMN-PQRST", "17 were given"),
        ("", "0 were given"),
        ("ABCD-EFGH-JKMN-PQRU", "'U' is not on any card"),
        ("ABCD-EFGH-JKMN-PQR€", "'€' is not on any card"),
        ("ABCD-EFGH-JKMN-PQR\x00", "'U+0000' is not on any card"),
    ],
)
def test_what_cannot_be_a_code_is_refused_naming_the_field(typed: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        refill.parse_code(typed)
    assert caught.value.field == "code"
    assert caught.value.rule.startswith("mistyped")
    assert message in caught.value.rule


def test_a_wrong_check_symbol_is_a_typo() -> None:
    code = code_of(42)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(ValidationError, match="does not check out"):
        refill.parse_code(wrong)


separators = st.sampled_from(["", " ", "-", "  ", " - "])


@given(payloads, st.lists(separators, min_size=16, max_size=16), st.booleans())
def test_round_trip_through_print_and_typing(number: int, gaps: list[str], lower: bool) -> None:
    code = code_of(number)
    assert refill.parse_code(refill.group(code)) == code
    typed = "".join(symbol + gap for symbol, gap in zip(code, gaps, strict=True))
    assert refill.parse_code(typed.lower() if lower else typed) == code
    assert refill.normalize(refill.group(code)) == code


# --- hashing ----------------------------------------------------------------------------------


def test_the_hash_is_a_keyed_hmac_that_hides_the_code() -> None:
    code = code_of(99)
    hashed = refill.code_hash(code, KEY)
    assert hashed == refill.code_hash(code, KEY)
    assert len(hashed) == 64
    assert int(hashed, 16) >= 0
    assert code not in hashed
    assert hashed != refill.code_hash(code, KEY + b"!")  # another installation, another hash
    assert hashed != refill.code_hash(code_of(100), KEY)
    assert hashed != hashlib.sha256(code.encode()).hexdigest()  # not a plain, guessable SHA-256


def test_hashing_refuses_short_keys_and_raw_input() -> None:
    with pytest.raises(ValidationError, match="at least 16 bytes"):
        refill.code_hash(code_of(1), b"short")
    with pytest.raises(ValueError, match="canonical"):
        refill.code_hash("abcd-efgh", KEY)


# --- the redemption rule ----------------------------------------------------------------------


def facts(**changes: object) -> CardFacts:
    base: dict[str, object] = {
        "status": CardStatus.ACTIVE,
        "currency": "USD",
        "expires_at": NOW + timedelta(days=1),
        "expires_on": date(2026, 1, 1),
    }
    return CardFacts(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("card", "wallet", "reason"),
    [
        (facts(), "USD", None),
        (facts(expires_at=None, expires_on=None), "USD", None),
        (facts(status=CardStatus.REDEEMED), "USD", "already redeemed"),
        (facts(status=CardStatus.VOIDED), "USD", "voided"),
        (facts(status=CardStatus.EXPIRED), "USD", "expired (valid through 2026-01-01)"),
        (facts(expires_at=NOW), "USD", "expired (valid through 2026-01-01)"),
        (facts(), "EUR", "wrong currency: the card is in USD, the wallet in EUR"),
        # a used card says so, even after its date
        (facts(status=CardStatus.REDEEMED, expires_at=NOW), "EUR", "already redeemed"),
    ],
)
def test_refusal_reasons(card: CardFacts, wallet: str, reason: str | None) -> None:
    assert refill.refusal(card, wallet_currency=wallet, now=NOW) == reason


def test_the_last_valid_day_ends_at_local_midnight() -> None:
    assert refill.expiry_instant(date(2026, 1, 31), "UTC") == datetime(2026, 2, 1, tzinfo=UTC)
    assert refill.expiry_instant(date(2026, 1, 31), "Europe/Prague") == datetime(
        2026, 1, 31, 23, tzinfo=UTC
    )
    with pytest.raises(ValidationError):
        refill.expiry_instant(date(2026, 1, 31), "Nowhere/Land")


# --- throttling -------------------------------------------------------------------------------


def test_the_throttle_opens_when_the_oldest_counted_failure_leaves_the_window() -> None:
    policy = ThrottlePolicy(max_failures=5, window=timedelta(minutes=15))
    failures = [NOW + timedelta(minutes=m) for m in range(5)]
    assert refill.retry_at(failures[:4], now=NOW + timedelta(minutes=5), policy=policy) is None
    assert refill.retry_at(failures, now=NOW + timedelta(minutes=5), policy=policy) == (
        NOW + timedelta(minutes=15)
    )
    assert refill.retry_at(failures, now=NOW + timedelta(minutes=15), policy=policy) is None
    # more failures than the limit (concurrent attempts): wait until enough have aged out
    seven = [NOW + timedelta(minutes=m) for m in range(7)]
    assert refill.retry_at(seven, now=NOW + timedelta(minutes=7), policy=policy) == (
        NOW + timedelta(minutes=17)
    )
    # failures "in the future" of now (clock moved back) do not count
    assert refill.retry_at(failures, now=NOW, policy=policy) is None


def test_a_throttle_policy_must_make_sense() -> None:
    with pytest.raises(ValidationError):
        ThrottlePolicy(max_failures=0)
    with pytest.raises(ValidationError):
        ThrottlePolicy(window=timedelta(0))
