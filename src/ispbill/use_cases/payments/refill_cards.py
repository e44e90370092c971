"""Refill cards: issue a batch, redeem a code exactly once, void, expire, and prove the liability.

The rules about codes (alphabet, check symbol, hashing, expiry, throttling) live in
``domain/refill.py``; this module stores their outcome.

Ledger (a positive posting credits; see ``domain/ledger.py``):

=========  =======================  =======================  =========================  ========
use case   debit                    credit                   key                        amount
=========  =======================  =======================  =========================  ========
issue      refill_card_sales        refill_card_liability    ``card-batch:<batch>``     count x value
redeem     refill_card_liability    the customer's wallet    ``card-redemption:<card>`` value
void       refill_card_liability    refill_card_sales        ``card-void:<card>``       value
expire     refill_card_liability    adjustments (breakage)   ``card-expiry:<card>``     value
=========  =======================  =======================  =========================  ========

``refill_card_sales`` is what distributors owe for the cards they were given (a receivable: it
carries a debit, negative sum, like cash); money from them settles it with a later payment. A
card is a liability from the moment it is issued, whether or not it has been sold.

Invariants (checked by ``liability_report`` and the tests):

* the liability account equals the value of the ``active`` cards: every status change away from
  ``active`` posts exactly its card's value out of the liability, in the same transaction, under
  a key unique to that card;
* an expired card stays a liability, and stays ``active`` in storage, until ``expire_cards`` runs
  (it is refused at redemption from its expiry instant on either way). The run moves it to
  breakage (``adjustments``); after it, the liability equals the unredeemed, unexpired cards.
  Keeping the move explicit means the books change only when an operator (or a scheduled job)
  decides so, and the breakage is dated by that run.

Exactly once: a redemption takes the customer's row lock (the per-customer mutex), then the card
row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers),
and marks the card with ``UPDATE ... WHERE status = 'active'`` whose row count must be 1. The
ledger key ``card-redemption:<card>`` and the payment's unique idempotency key (the same text) are
two more backstops. Two racing redemptions of one code give one success and one "already
redeemed".

Failed attempts and throttling: a code whose check symbol does not match is refused before any
lookup and is *not* recorded: it reveals nothing about which codes exist (anyone can compute a
check symbol, so a guesser never sends a wrong one), and a customer's typos should not lock
them out. Every refusal that needed a lookup (unknown, used, voided, expired, wrong currency) is
recorded in ``redemption_attempts`` (customer, source, reason, time; never the code) in its own
transaction after the redemption is rolled back, and counts towards ``ThrottlePolicy``: 5 per 15
minutes per customer and per source by default. A throttled attempt is refused before the lookup
and not recorded, so the refusal can say when the lock lifts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NoReturn

from sqlalchemy import Executable, Select, case, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.invoice_store import apply_credit
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.models import (
    Customer,
    LedgerAccount,
    Payment,
    RedemptionAttempt,
    RefillCard,
    RefillCardBatch,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain import refill
from ispbill.domain.calendar import load_timezone
from ispbill.domain.dates import check_date
from ispbill.domain.errors import Conflict, LedgerError, NotFound, ValidationError
from ispbill.domain.ledger import (
    AccountKind,
    AccountRef,
    Entry,
    EntryKind,
    check_amount_range,
    transfer,
)
from ispbill.domain.money import Money
from ispbill.domain.payments import PaymentMethod
from ispbill.domain.refill import CardStatus, Refusal, ThrottlePolicy
from ispbill.use_cases.billing.reevaluation import reevaluate_customer
from ispbill.use_cases.payments.recording import lock_customer

__all__ = [
    "DEFAULT_THROTTLE",
    "MAX_BATCH_COUNT",
    "MAX_VOID_SERIALS",
    "ExpiryReport",
    "IssuedBatch",
    "IssuedCard",
    "Liability",
    "NewBatch",
    "Redeemed",
    "Voided",
    "expire_cards",
    "find_batch",
    "generate_batch",
    "liability_report",
    "list_cards",
    "redeem_card",
    "secret_key",
    "void_cards",
]

MAX_BATCH_COUNT = 10_000
"""A batch is printed as one PDF sheet; 10 000 cards is about 420 A4 pages."""
DEFAULT_THROTTLE = ThrottlePolicy()
PAYMENT_METHOD = PaymentMethod.REFILL_CARD.value
_PREFIX = re.compile(r"[A-Z][A-Z0-9]{0,7}")
_MAX_SOURCE = 100
_CHUNK = 500  # ids / hashes per IN (...) list: far below every database's parameter limit
_MAX_DRAWS = 100
MAX_VOID_SERIALS = _CHUNK
"""Serials one void may name: one IN (...) list; more is what voiding a batch is for."""


def secret_key(secret: str | None) -> bytes:
    """The HMAC key from the ``ISPBILL_REFILL_CARD_SECRET`` setting, or a refusal saying how to
    set one. It is never stored in the database (see domain/refill.py)."""
    if secret is None or not secret.strip():
        raise ValidationError(
            "refill_card_secret",
            "not set; export ISPBILL_REFILL_CARD_SECRET=<at least 32 random characters, e.g. "
            "from 'openssl rand -hex 32'>, keep it outside the database and its backups, and "
            "never change it while cards are outstanding",
        )
    key = secret.strip().encode("utf-8")
    if len(key) < 2 * refill.MIN_KEY_BYTES:
        raise ValidationError(
            "refill_card_secret", f"must be at least {2 * refill.MIN_KEY_BYTES} characters long"
        )
    return key


# -- issuing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewBatch:
    count: int
    value: str
    currency: str
    expires_on: date | None = None
    prefix: str = "RC"
    timezone: str = "UTC"


@dataclass(frozen=True)
class IssuedCard:
    serial: str
    code: str  # printed form, ABCD-EFGH-JKMN-PQR7: exists only here and in the operator's files


@dataclass(frozen=True)
class IssuedBatch:
    batch_id: int
    name: str
    value: Money
    total: Money
    expires_on: date | None
    timezone: str
    cards: tuple[IssuedCard, ...]


Deliver = Callable[[IssuedBatch], None]


def _validated(spec: NewBatch, *, now: datetime) -> tuple[Money, Money, str, datetime | None]:
    if isinstance(spec.count, bool) or not isinstance(spec.count, int):
        raise ValidationError("count", "must be a whole number")
    if not 1 <= spec.count <= MAX_BATCH_COUNT:
        raise ValidationError("count", f"must be between 1 and {MAX_BATCH_COUNT}")
    value = Money.from_major(spec.value, spec.currency, field="value")
    if not value.is_positive:
        raise ValidationError("value", "must be greater than zero")
    total = check_amount_range(value * spec.count, "value")
    prefix = spec.prefix.strip().upper()
    if not _PREFIX.fullmatch(prefix):
        raise ValidationError("prefix", "1 to 8 letters and digits, starting with a letter")
    load_timezone(spec.timezone)
    expires_at = None
    if spec.expires_on is not None:
        check_date("expires", spec.expires_on)
        expires_at = refill.expiry_instant(spec.expires_on, spec.timezone)
        if expires_at <= now:
            raise ValidationError(
                "expires", f"{spec.expires_on.isoformat()} is in the past in {spec.timezone}"
            )
    return value, total, prefix, expires_at


def generate_batch(
    uow: UnitOfWork,
    *,
    spec: NewBatch,
    key: bytes,
    now: datetime,
    actor: str,
    deliver: Deliver,
    randbits: refill.RandomBits = secrets.randbits,
) -> IssuedBatch:
    """Issue ``spec.count`` cards and post their value as a liability, in one transaction.

    The codes leave this function once, through ``deliver`` (which writes the operator's CSV and
    PDF), *before* the commit: if they cannot be delivered nothing is issued, so no card can
    exist whose code nobody has. If the commit fails after delivery, the caller removes the
    files. Only each code's HMAC is stored.
    """
    value, total, prefix, expires_at = _validated(spec, now=now)
    uow.begin_write()
    session = uow.session
    batch = RefillCardBatch(
        prefix=prefix,
        card_count=spec.count,
        value_minor=value.minor,
        currency=value.currency,
        expires_on=spec.expires_on,
        timezone=spec.timezone,
        created_at=now,
        actor=actor,
    )
    session.add(batch)
    session.flush()
    codes = _fresh_codes(session, spec.count, key, randbits)
    serials = [f"{batch.name}-{n:05d}" for n in range(1, spec.count + 1)]
    session.execute(
        insert(RefillCard),
        [
            {
                "batch_id": batch.id,
                "serial": serial,
                "code_hash": hashed,
                "value_minor": value.minor,
                "currency": value.currency,
                "expires_on": spec.expires_on,
                "expires_at": expires_at,
                "status": CardStatus.ACTIVE.value,
                "created_at": now,
            }
            for serial, (_, hashed) in zip(serials, codes, strict=True)
        ],
    )
    figures = {
        "cards": str(spec.count),
        "value": str(value),
        "expires_on": spec.expires_on.isoformat() if spec.expires_on else "",
    }
    ledger.post(
        uow,
        transfer(
            key=f"card-batch:{batch.id}",
            kind=EntryKind.CARD_ISSUE,
            debit=AccountRef.system(AccountKind.REFILL_CARD_SALES, value.currency),
            credit=AccountRef.system(AccountKind.REFILL_CARD_LIABILITY, value.currency),
            amount=total,
            effective_at=now,
            memo=f"refill card batch {batch.name}: {spec.count} x {value}",
            figures=figures,
        ),
        now=now,
    )
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="refill_card.batch_issued",
        subject_type="refill_card_batch",
        subject_id=batch.id,
        figures={**figures, "total": str(total), "batch": batch.name},
    )
    issued = IssuedBatch(
        batch_id=batch.id,
        name=batch.name,
        value=value,
        total=total,
        expires_on=spec.expires_on,
        timezone=spec.timezone,
        cards=tuple(
            IssuedCard(serial, refill.group(code))
            for serial, (code, _) in zip(serials, codes, strict=True)
        ),
    )
    deliver(issued)
    uow.commit()
    return issued


def _fresh_codes(
    session: Session, count: int, key: bytes, randbits: refill.RandomBits
) -> list[tuple[str, str]]:
    """``count`` new (code, hash) pairs whose hashes are in no stored card and not repeated.

    With 75 random bits a repeat is astronomically unlikely; checking costs one query per 500
    cards and turns the UNIQUE constraint from a failed batch into a backstop.
    """
    chosen: dict[str, str] = {}
    for _ in range(_MAX_DRAWS):
        wanted = count - len(chosen)
        if wanted == 0:
            break
        drawn: dict[str, str] = {}
        for _ in range(wanted):
            code = refill.generate_code(randbits)
            hashed = refill.code_hash(code, key)
            if hashed not in chosen:
                drawn[hashed] = code
        hashes = list(drawn)
        for start in range(0, len(hashes), _CHUNK):
            taken = session.scalars(
                select(RefillCard.code_hash).where(
                    RefillCard.code_hash.in_(hashes[start : start + _CHUNK])
                )
            )
            for hashed in taken:
                drawn.pop(hashed, None)
        chosen.update(drawn)
    if len(chosen) != count:
        raise RuntimeError("the random source keeps repeating codes; refusing to issue cards")
    return [(code, hashed) for hashed, code in chosen.items()]


# -- redeeming -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redeemed:
    card_id: int
    serial: str
    customer_id: int
    customer_name: str
    amount: Money
    applied: Money
    payment_id: int
    balance: Money


def _source(source: str | None) -> str | None:
    if source is None or not source.strip():
        return None
    text = source.strip()
    if len(text) > _MAX_SOURCE:
        raise ValidationError("source", f"at most {_MAX_SOURCE} characters")
    return text


def redeem_card(
    uow: UnitOfWork,
    *,
    code: str,
    customer_id: int,
    key: bytes,
    now: datetime,
    actor: str,
    source: str | None = None,
    policy: ThrottlePolicy = DEFAULT_THROTTLE,
) -> Redeemed:
    """Move a card's value into the customer's wallet, once; re-evaluate the customer at once.

    Refusals name the field ``code`` and the reason (``refill.Refusal``); see the module
    docstring for which of them count towards throttling.
    """
    canonical = refill.parse_code(code)  # a typo is refused here, before any lookup
    origin = _source(source)
    hashed = refill.code_hash(canonical, key)
    session = uow.session
    row = lock_customer(uow, customer_id)
    wallet_currency = row.currency
    _check_throttle(session, customer_id=customer_id, source=origin, now=now, policy=policy)

    card = session.scalars(
        select(RefillCard)
        .where(RefillCard.code_hash == hashed)
        .with_for_update()  # PostgreSQL row lock; SQLite already holds the write lock
        .execution_options(populate_existing=True)
    ).one_or_none()
    if card is None:
        _refuse(uow, customer_id, origin, Refusal.UNKNOWN, Refusal.UNKNOWN.value, now=now)
    facts = refill.CardFacts(
        status=CardStatus(card.status),
        currency=card.currency,
        expires_at=card.expires_at,
        expires_on=card.expires_on,
    )
    reason = refill.refusal(facts, wallet_currency=wallet_currency, now=now)
    if reason is not None:
        _refuse(uow, customer_id, origin, _kind_of(reason), reason, now=now)
    marked = _changed(
        session,
        update(RefillCard)
        .where(RefillCard.id == card.id, RefillCard.status == CardStatus.ACTIVE.value)
        .values(status=CardStatus.REDEEMED.value, redeemed_at=now, customer_id=customer_id)
        .execution_options(synchronize_session=False),
    )
    if marked != 1:  # unreachable under the locks above; the last word is the row's
        _refuse(uow, customer_id, origin, Refusal.REDEEMED, Refusal.REDEEMED.value, now=now)

    amount = Money(card.value_minor, card.currency)
    key_text = f"card-redemption:{card.id}"
    posted = ledger.post(
        uow,
        transfer(
            key=key_text,
            kind=EntryKind.CARD_REDEMPTION,
            debit=AccountRef.system(AccountKind.REFILL_CARD_LIABILITY, amount.currency),
            credit=AccountRef.wallet(customer_id, amount.currency),
            amount=amount,
            effective_at=now,
            memo=f"refill card {card.serial}",
            customer_id=customer_id,
            figures={"serial": card.serial},
        ),
        now=now,
    )
    if not posted.created:  # the card row said active, yet its redemption is in the books
        raise LedgerError(f"{key_text} is already posted while card {card.serial} was active")
    payment = Payment(
        customer_id=customer_id,
        method=PAYMENT_METHOD,
        amount_minor=amount.minor,
        currency=amount.currency,
        reference=card.serial,
        idempotency_key=key_text,
        received_at=now,
        recorded_at=now,
        transaction_id=posted.transaction.id,
        actor=actor,
    )
    session.add(payment)
    session.flush()
    applied = apply_credit(session, row, now=now, payment_id=payment.id, limit=amount)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="refill_card.redeemed",
        subject_type="refill_card",
        subject_id=card.id,
        customer_id=customer_id,
        reason=PAYMENT_METHOD,
        figures={
            "amount": str(amount),
            "serial": card.serial,
            "payment_id": payment.id,
            "applied_to_invoices": str(applied),
            "source": origin,
        },
    )
    reevaluate_customer(uow, customer_id, now=now, actor=actor)
    balance = ledger.wallet_balance(session, customer_id, wallet_currency)
    result = Redeemed(
        card_id=card.id,
        serial=card.serial,
        customer_id=customer_id,
        customer_name=row.name,
        amount=amount,
        applied=applied,
        payment_id=payment.id,
        balance=balance,
    )
    uow.commit()
    return result


def _changed(session: Session, statement: Executable) -> int:
    """Rows an UPDATE changed: the proof that a conditional status move happened."""
    result = session.execute(statement)
    assert isinstance(result, CursorResult)
    return result.rowcount


def _kind_of(reason: str) -> Refusal:
    for kind in (Refusal.REDEEMED, Refusal.VOIDED, Refusal.EXPIRED, Refusal.CURRENCY):
        if reason.startswith(kind.value):
            return kind
    raise ValueError(f"unclassified refusal {reason!r}")


def _refuse(
    uow: UnitOfWork,
    customer_id: int,
    source: str | None,
    kind: Refusal,
    rule: str,
    *,
    now: datetime,
) -> NoReturn:
    """Roll the redemption back, record the failed attempt in its own transaction, refuse."""
    uow.session.rollback()
    uow.begin_write()
    uow.session.add(
        RedemptionAttempt(
            customer_id=customer_id, source=source, reason=kind.value, attempted_at=now
        )
    )
    uow.commit()
    if kind is Refusal.REDEEMED:
        raise Conflict("code", rule)
    raise ValidationError("code", rule)


def _check_throttle(
    session: Session,
    *,
    customer_id: int,
    source: str | None,
    now: datetime,
    policy: ThrottlePolicy,
) -> None:
    since = now - policy.window
    recent = (RedemptionAttempt.attempted_at > since) & (RedemptionAttempt.attempted_at <= now)
    scopes = [RedemptionAttempt.customer_id == customer_id]
    if source is not None:
        scopes.append(RedemptionAttempt.source == source)
    waits = []
    for scope in scopes:
        failures = session.scalars(select(RedemptionAttempt.attempted_at).where(scope, recent))
        wait = refill.retry_at(list(failures), now=now, policy=policy)
        if wait is not None:
            waits.append(wait)
    if waits:
        until = _minute_up(max(waits))
        raise ValidationError(
            "code", f"{Refusal.THROTTLED.value}; try again after {until:%H:%M} UTC"
        )


def _minute_up(instant: datetime) -> datetime:
    """Round up to the minute, so "after HH:MM" is never a few seconds too early."""
    utc = instant.astimezone(UTC)
    floor = utc.replace(second=0, microsecond=0)
    return floor if floor == utc else floor + timedelta(minutes=1)


# -- voiding and expiring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Voided:
    serials: tuple[str, ...]
    total: dict[str, Money]


def find_batch(session: Session, ref: str) -> RefillCardBatch:
    """A batch by id (``12``) or name (``RC00012``: the prefix, then the id in 5+ digits)."""
    text = ref.strip().upper()
    if text.isascii() and text.isdigit():
        candidates = {int(text)}
    else:  # a prefix may end in digits, so try every split that leaves 5+ digits of id
        candidates = {
            int(text[k:])
            for k in range(1, len(text) - 4)
            if text[k:].isascii() and text[k:].isdigit() and _PREFIX.fullmatch(text[:k])
        }
    wanted = [i for i in candidates if 0 < i <= MAX_ID]
    for batch in session.scalars(select(RefillCardBatch).where(RefillCardBatch.id.in_(wanted))):
        if text.isdigit() or batch.name == text:
            return batch
    raise NotFound("refill card batch", ref, field="batch")


def void_cards(
    uow: UnitOfWork,
    *,
    now: datetime,
    actor: str,
    serial: str | None = None,
    batch: str | None = None,
    reason: str = "",
    serials: Sequence[str] = (),
) -> Voided:
    """Void active cards: one (``serial``), several named ones (``serials``: all of them or,
    if any is unknown or not active, none), or every active card of a batch (``batch``). Their
    value leaves the liability (back to refill_card_sales). A redeemed card is not voided:
    reverse its payment instead."""
    named = _normalised([*([] if serial is None else [serial]), *serials])
    if bool(named) == (batch is not None):
        raise ValidationError("serial", "give a card serial or a batch, not both")
    uow.begin_write()
    session = uow.session
    query = select(RefillCard).order_by(RefillCard.id).with_for_update()
    if named:
        cards = _active_named(session, query, named)
        subjects = [("refill_card", c.id, [c]) for c in cards]  # each card's own history
    else:
        assert batch is not None
        found = find_batch(session, batch)
        cards = list(
            session.scalars(
                query.where(
                    RefillCard.batch_id == found.id, RefillCard.status == CardStatus.ACTIVE.value
                )
            )
        )
        if not cards:
            raise ValidationError("batch", f"{found.name} has no active cards to void")
        subjects = [("refill_card_batch", found.id, cards)]
    totals = _close(
        uow,
        cards,
        status=CardStatus.VOIDED,
        stamp={"voided_at": now},
        now=now,
        entry=lambda c, amount: transfer(
            key=f"card-void:{c.id}",
            kind=EntryKind.ADJUSTMENT,
            debit=AccountRef.system(AccountKind.REFILL_CARD_LIABILITY, amount.currency),
            credit=AccountRef.system(AccountKind.REFILL_CARD_SALES, amount.currency),
            amount=amount,
            effective_at=now,
            memo=f"refill card {c.serial} voided{': ' + reason if reason else ''}",
            figures={"serial": c.serial},
        ),
    )
    for subject_type, subject_id, group in subjects:
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="refill_card.voided",
            subject_type=subject_type,
            subject_id=subject_id,
            reason=reason,
            figures={
                "cards": str(len(group)),
                "total": ", ".join(str(t) for t in _totals(group).values()),
                "first_serial": group[0].serial,
                "last_serial": group[-1].serial,
            },
        )
    result = Voided(tuple(c.serial for c in cards), totals)
    uow.commit()
    return result


def _normalised(serials: Sequence[str]) -> list[str]:
    """Serials as stored (upper case), each once, in the order given; at most one IN list."""
    named = list(dict.fromkeys(s.strip().upper() for s in serials if s.strip()))
    if len(named) > MAX_VOID_SERIALS:
        raise ValidationError(
            "serial", f"at most {MAX_VOID_SERIALS} serials at once; void the whole batch instead"
        )
    return named


def _active_named(
    session: Session, query: Select[RefillCard], serials: list[str]
) -> list[RefillCard]:
    """The named cards, locked, in id order; refused unless every one exists and is active."""
    found = {c.serial: c for c in session.scalars(query.where(RefillCard.serial.in_(serials)))}
    for serial in serials:
        card = found.get(serial)
        if card is None:
            raise NotFound("refill card", serial, field="serial")
        if card.status != CardStatus.ACTIVE.value:
            raise ValidationError(
                "serial", f"card {card.serial} is {card.status}; only active cards can be voided"
            )
    return sorted(found.values(), key=lambda c: c.id)


@dataclass(frozen=True)
class ExpiryReport:
    cards: int
    total: dict[str, Money]


def expire_cards(uow: UnitOfWork, *, now: datetime, actor: str) -> ExpiryReport:
    """Move every active card past its expiry instant from the liability to breakage.

    Idempotent: a second run at the same instant finds nothing; concurrent runs serialise on the
    card rows, and each card's entry key is unique.
    """
    uow.begin_write()
    session = uow.session
    cards = list(
        session.scalars(
            select(RefillCard)
            .where(
                RefillCard.status == CardStatus.ACTIVE.value,
                RefillCard.expires_at.is_not(None),
                RefillCard.expires_at <= now,
            )
            .order_by(RefillCard.id)
            .with_for_update()
        )
    )
    if not cards:
        return ExpiryReport(0, {})
    totals = _close(
        uow,
        cards,
        status=CardStatus.EXPIRED,
        stamp={"expired_at": now},
        now=now,
        entry=lambda c, amount: transfer(
            key=f"card-expiry:{c.id}",
            kind=EntryKind.ADJUSTMENT,
            debit=AccountRef.system(AccountKind.REFILL_CARD_LIABILITY, amount.currency),
            credit=AccountRef.system(AccountKind.ADJUSTMENTS, amount.currency),
            amount=amount,
            effective_at=now,
            memo=f"breakage: refill card {c.serial} expired unredeemed",
            figures={"serial": c.serial, "expires_on": str(c.expires_on)},
        ),
    )
    per_batch: dict[int, list[RefillCard]] = {}
    for card in cards:
        per_batch.setdefault(card.batch_id, []).append(card)
    for batch_id, expired in per_batch.items():
        events.record(
            uow,
            now=now,
            actor=actor,
            kind="refill_card.expired",
            subject_type="refill_card_batch",
            subject_id=batch_id,
            figures={
                "cards": str(len(expired)),
                "total": str(Money(sum(c.value_minor for c in expired), expired[0].currency)),
            },
        )
    report = ExpiryReport(len(cards), totals)
    uow.commit()
    return report


def _close(
    uow: UnitOfWork,
    cards: Sequence[RefillCard],
    *,
    status: CardStatus,
    stamp: dict[str, datetime],
    now: datetime,
    entry: Callable[[RefillCard, Money], Entry],
) -> dict[str, Money]:
    """Move locked active cards to ``status`` and post each one's value out of the liability."""
    session = uow.session
    ids = [c.id for c in cards]
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        changed += _changed(
            session,
            update(RefillCard)
            .where(
                RefillCard.id.in_(ids[start : start + _CHUNK]),
                RefillCard.status == CardStatus.ACTIVE.value,
            )
            .values(status=status.value, **stamp)
            .execution_options(synchronize_session=False),
        )
    if changed != len(ids):  # the rows are locked; a mismatch means another writer broke in
        raise LedgerError(f"{len(ids) - changed} card(s) changed status during the {status} run")
    entries = [entry(c, Money(c.value_minor, c.currency)) for c in cards]
    ledger.post_batch(session, entries, now=now)
    return _totals(cards)


def _totals(cards: Sequence[RefillCard]) -> dict[str, Money]:
    """The cards' value per currency."""
    totals: dict[str, Money] = {}
    for c in cards:
        amount = Money(c.value_minor, c.currency)
        totals[c.currency] = totals[c.currency] + amount if c.currency in totals else amount
    return totals


# -- reading ---------------------------------------------------------------------------------------


def list_cards(
    session: Session,
    *,
    batch: str | None = None,
    status: str | None = None,
    serial: str | None = None,
    customer_id: int | None = None,
    after: int = 0,
    limit: int | None = 1000,
) -> list[tuple[RefillCard, RefillCardBatch, str | None]]:
    """Cards with their batch and the name of the customer who redeemed them, oldest first,
    in one query; ``serial`` matches the start of a serial, ``after`` is the last id of the
    previous page. There is no code to show: only its hash is kept."""
    query = (
        select(RefillCard, RefillCardBatch, Customer.name)
        .join(RefillCardBatch, RefillCardBatch.id == RefillCard.batch_id)
        .outerjoin(Customer, Customer.id == RefillCard.customer_id)
        .where(RefillCard.id > after)
        .order_by(RefillCard.id)
        .limit(limit)
    )
    if batch is not None:
        query = query.where(RefillCard.batch_id == find_batch(session, batch).id)
    if status is not None:
        try:
            query = query.where(RefillCard.status == CardStatus(status.strip().lower()).value)
        except ValueError:
            raise ValidationError(
                "status", f"must be one of: {', '.join(s.value for s in CardStatus)}"
            ) from None
    if serial is not None and serial.strip():
        start = serial.strip().upper()
        query = query.where(RefillCard.serial.startswith(start, autoescape=True))
    if customer_id is not None:
        query = query.where(RefillCard.customer_id == customer_id)
    return [(card, found, name) for card, found, name in session.execute(query)]


@dataclass(frozen=True)
class Liability:
    """Refill-card liability in one currency: the ledger against the cards."""

    currency: str
    ledger: Money
    outstanding: Money
    unexpired: Money
    awaiting_expiry: Money
    active_cards: int
    cards_awaiting_expiry: int

    @property
    def balanced(self) -> bool:
        """The liability account equals the value of the active cards (always true)."""
        return self.ledger == self.outstanding

    @property
    def expiry_up_to_date(self) -> bool:
        """No active card is past its expiry: liability = unredeemed, unexpired cards."""
        return self.ledger == self.unexpired


def liability_report(session: Session, *, now: datetime) -> list[Liability]:
    """Per currency: the liability account's balance, and the active cards' value split into
    unexpired and awaiting an ``expire_cards`` run."""
    past = RefillCard.expires_at.is_not(None) & (RefillCard.expires_at <= now)
    cards: dict[str, tuple[int, int, int, int]] = {}
    for currency, count, total, past_count, past_total in session.execute(
        select(
            RefillCard.currency,
            func.count(),
            func.sum(RefillCard.value_minor),
            func.sum(case((past, 1), else_=0)),
            func.sum(case((past, RefillCard.value_minor), else_=0)),
        )
        .where(RefillCard.status == CardStatus.ACTIVE.value)
        .group_by(RefillCard.currency)
    ):
        old_n, old = int(past_count), int(past_total)
        cards[currency] = (int(count) - old_n, int(total) - old, old_n, old)
    balances = dict(
        session.execute(
            select(LedgerAccount.currency, LedgerAccount.balance_minor).where(
                LedgerAccount.kind == AccountKind.REFILL_CARD_LIABILITY.value
            )
        ).all()
    )
    report = []
    for currency in sorted(set(cards) | set(balances)):
        live_n, live, old_n, old = cards.get(currency, (0, 0, 0, 0))
        report.append(
            Liability(
                currency=currency,
                ledger=Money(int(balances.get(currency, 0)), currency),
                outstanding=Money(live + old, currency),
                unexpired=Money(live, currency),
                awaiting_expiry=Money(old, currency),
                active_cards=live_n + old_n,
                cards_awaiting_expiry=old_n,
            )
        )
    return report
