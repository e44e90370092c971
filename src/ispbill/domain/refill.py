"""Refill cards: the secret code, its check character, its stored hash, and the redemption rules.

A refill card (Splynx "refill card", CRM.COM "voucher") is a secret code printed on paper, worth
a fixed amount in one currency, valid until a date, usable once. This module decides everything
about a card that needs no database: how a code is made, typed, checked and hashed, whether a
card may be redeemed, and whether a customer or a source has failed too often to try again.

The code
    16 symbols of Crockford's base32 alphabet ``0-9 A-Z`` without ``I L O U`` (no 1/I/L or 0/O
    to confuse on paper): 15 random symbols and one check symbol, printed in groups of four,
    ``ABCD-EFGH-JKMN-PQR7``. The random part carries 15 * log2(32) = 75 bits (the issue asks
    for at least 60). The random source is injected; ``secrets.randbits`` by default.

    Reading is forgiving in the ways people are: case, spaces and dashes are ignored, and per
    Crockford ``O`` reads as ``0`` and ``I`` / ``L`` as ``1``.

The check symbol
    Damm's algorithm over the totally anti-symmetric quasigroup ``x * y = 2x + y`` of the field
    GF(32) (modulus x^5 + x^2 + 1). A Latin square catches every single-symbol substitution; total
    anti-symmetry (``(c*x)*y = (c*y)*x`` only when ``x = y``, because ``2 != 1``) catches every
    adjacent transposition, the check symbol included. Luhn mod 32 would miss ``0Z``/``Z0``, and
    Crockford's own mod-37 check needs five extra symbols (``*~$=U``) nobody wants to type. A
    mistyped code is therefore refused before any lookup, which also keeps typos from counting
    as guesses (see ``services/refill_cards``).

The stored hash
    Only ``HMAC-SHA256(server key, canonical code)`` is stored, never the code. The hash must be
    deterministic to be looked up (a UNIQUE index), so it cannot have a per-card salt, and a
    per-batch salt would force one hash per batch on every redemption. Is a plain SHA-256 enough
    for 75 random bits? Against a stolen database holding N cards, finding *some* valid code
    costs 2^75 / N hashes: for a million cards 2^55, which a rented GPU cluster (10^10-10^11
    SHA-256 per second per GPU) reaches in days, and far sooner for 60-bit codes. Keying the hash
    with a secret kept outside the database (the ``ISPBILL_REFILL_CARD_SECRET`` setting) makes a
    leak of the database, or of a backup, worthless on its own. Changing that secret makes the
    outstanding cards unredeemable, so it is set once per installation.

Expiry
    ``expires_on`` is the last day a card is valid, in the batch's timezone: the card expires at
    the local midnight that ends that day (``expires_at``).

Throttling
    A policy is data (``ThrottlePolicy``): at most ``max_failures`` failed redemptions within
    ``window`` per customer and, separately, per source (an IP address, a reseller terminal). The
    refusal says when to try again.

Pure: no database, no clock, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from ispbill.domain.calendar import load_timezone, local_midnight
from ispbill.domain.errors import ValidationError

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "ENTROPY_BITS",
    "MIN_ENTROPY_BITS",
    "MIN_KEY_BYTES",
    "RANDOM_LENGTH",
    "CardFacts",
    "CardStatus",
    "Refusal",
    "ThrottlePolicy",
    "check_symbol",
    "code_hash",
    "entropy_bits",
    "expiry_instant",
    "generate_code",
    "group",
    "has_valid_check",
    "normalize",
    "parse_code",
    "refusal",
    "retry_at",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 symbols: digits and letters without I, L, O, U."""
RANDOM_LENGTH = 15
CODE_LENGTH = RANDOM_LENGTH + 1
GROUP_SIZE = 4
MIN_ENTROPY_BITS = 60
MIN_KEY_BYTES = 16
"""A shorter HMAC key could itself be guessed; 16 bytes is 128 bits."""

_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
# Crockford: read the letters people confuse with digits as those digits.
_ALIASES = {"O": "0", "I": "1", "L": "1"}
# Separators people type or paste between the groups: spaces, dashes of every kind, dots.
_SEPARATORS = frozenset(" \t\r\n\u00a0\u202f\u2009-\u2010\u2011\u2012\u2013\u2014\u2212._")
_BITS_PER_SYMBOL = 5
_FIELD_MODULUS = 0b100101  # x^5 + x^2 + 1, irreducible over GF(2): GF(32)
_FIELD = "code"

RandomBits = Callable[[int], int]
"""``k -> an int of k random bits``, like ``secrets.randbits``."""


def entropy_bits(alphabet_size: int, length: int) -> float:
    """Bits of entropy of ``length`` symbols drawn uniformly from ``alphabet_size`` symbols."""
    return length * math.log2(alphabet_size)


ENTROPY_BITS = entropy_bits(len(ALPHABET), RANDOM_LENGTH)
assert ENTROPY_BITS >= MIN_ENTROPY_BITS


# -- the check symbol -----------------------------------------------------------------------------


def _times_two(x: int) -> int:
    """``2 * x`` in GF(32): shift, and reduce by the field's modulus when bit 5 is set."""
    doubled = x << 1
    return doubled ^ _FIELD_MODULUS if doubled & 0b100000 else doubled


def _interim(symbols: str) -> int:
    """Damm's running value over ``x * y = 2x + y`` (addition in GF(32) is XOR)."""
    state = 0
    for symbol in symbols:
        state = _times_two(state) ^ _VALUE[symbol]
    return state


def check_symbol(payload: str) -> str:
    """The symbol ``d`` that brings Damm's running value to 0: ``2c + d = 0``, so ``d = 2c``."""
    return ALPHABET[_times_two(_interim(payload))]


def has_valid_check(canonical: str) -> bool:
    """Whether a canonical code (alphabet symbols only) ends with its check symbol."""
    return _interim(canonical) == 0


# -- making, reading and printing codes ------------------------------------------------------------


def generate_code(randbits: RandomBits = secrets.randbits) -> str:
    """A new canonical code: 15 random symbols (75 bits) and the check symbol."""
    bits = randbits(RANDOM_LENGTH * _BITS_PER_SYMBOL)
    payload = "".join(
        ALPHABET[(bits >> (_BITS_PER_SYMBOL * i)) & 0b11111] for i in range(RANDOM_LENGTH)
    )
    return payload + check_symbol(payload)


def normalize(text: str) -> str:
    """What a person typed, as alphabet symbols: case, separators and Crockford aliases undone.

    Refuses (field ``code``) anything that cannot be a code: a wrong length or a symbol that is
    on no card. Does not look at the check symbol; ``parse_code`` does.
    """
    if not isinstance(text, str):
        raise TypeError(f"a code is a str, got {type(text).__name__}")
    symbols = []
    for char in text.upper():
        if char in _SEPARATORS:
            continue
        char = _ALIASES.get(char, char)
        if char not in _VALUE:
            shown = char if char.isprintable() else f"U+{ord(char):04X}"
            raise ValidationError(
                _FIELD, f"mistyped: {shown!r} is not on any card (letters and digits only)"
            )
        symbols.append(char)
    if len(symbols) != CODE_LENGTH:
        raise ValidationError(
            _FIELD,
            f"mistyped: a code has {CODE_LENGTH} letters and digits, {len(symbols)} were given",
        )
    return "".join(symbols)


def parse_code(text: str) -> str:
    """The canonical code of ``text``, or a refusal naming the mistake; needs no lookup."""
    canonical = normalize(text)
    if not has_valid_check(canonical):
        raise ValidationError(
            _FIELD, "mistyped: the code does not check out; please compare it with the card"
        )
    return canonical


def group(canonical: str) -> str:
    """Printed form: ``ABCD-EFGH-JKMN-PQR7``."""
    return "-".join(canonical[i : i + GROUP_SIZE] for i in range(0, len(canonical), GROUP_SIZE))


def code_hash(canonical: str, key: bytes) -> str:
    """What is stored instead of the code: HMAC-SHA256 keyed by the server secret, in hex."""
    if len(key) < MIN_KEY_BYTES:
        raise ValidationError("refill_card_secret", f"must be at least {MIN_KEY_BYTES} bytes long")
    if len(canonical) != CODE_LENGTH or not set(canonical) <= _VALUE.keys():
        raise ValueError("code_hash takes a canonical code; call parse_code first")
    return hmac.new(key, canonical.encode("ascii"), hashlib.sha256).hexdigest()


# -- redemption rules ------------------------------------------------------------------------------


class CardStatus(StrEnum):
    """Where a card is in its life; only ``active`` cards are money the ISP still owes."""

    ACTIVE = "active"
    REDEEMED = "redeemed"
    VOIDED = "voided"
    EXPIRED = "expired"


class Refusal(StrEnum):
    """Why a redemption is refused, as the rule text of ``ValidationError(field="code")``."""

    UNKNOWN = "unknown code"
    REDEEMED = "already redeemed"
    VOIDED = "voided"
    EXPIRED = "expired"
    CURRENCY = "wrong currency"
    THROTTLED = "too many failed attempts"


def expiry_instant(expires_on: date, timezone: str) -> datetime:
    """The UTC instant a card valid through ``expires_on`` (local date in ``timezone``) expires."""
    return local_midnight(expires_on + timedelta(days=1), load_timezone(timezone))


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What the redemption rule needs to know about a stored card."""

    status: CardStatus
    currency: str
    expires_at: datetime | None
    expires_on: date | None = None


def refusal(card: CardFacts, *, wallet_currency: str, now: datetime) -> str | None:
    """Why ``card`` cannot go into a ``wallet_currency`` wallet at ``now``; None if it can.

    The states are checked before the date, so a card that was redeemed and has since expired
    says "already redeemed", which is what its holder needs to hear.
    """
    if card.status is CardStatus.REDEEMED:
        return Refusal.REDEEMED.value
    if card.status is CardStatus.VOIDED:
        return Refusal.VOIDED.value
    if card.status is CardStatus.EXPIRED or (
        card.expires_at is not None and now >= card.expires_at
    ):
        last_day = f" (valid through {card.expires_on.isoformat()})" if card.expires_on else ""
        return f"{Refusal.EXPIRED.value}{last_day}"
    if card.currency != wallet_currency:
        return (
            f"{Refusal.CURRENCY.value}: the card is in {card.currency}, "
            f"the wallet in {wallet_currency}"
        )
    return None


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """At most ``max_failures`` failed redemptions per ``window``, per customer and per source."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValidationError("max_failures", "must be at least 1")
        if self.window <= timedelta(0):
            raise ValidationError("window", "must be positive")


def retry_at(
    failures: Sequence[datetime], *, now: datetime, policy: ThrottlePolicy
) -> datetime | None:
    """When the next attempt may be made, or None if it may be made now.

    ``failures`` are the instants of failed attempts (any order). Attempts refused by the
    throttle itself are not failures (they were never checked), so the lock lifts at a time the
    refusal can name instead of being extended by every retry.
    """
    recent = sorted(at for at in failures if now - policy.window < at <= now)
    if len(recent) < policy.max_failures:
        return None
    # Allowed once all but max_failures - 1 of the recent failures have left the window.
    return recent[len(recent) - policy.max_failures] + policy.window
