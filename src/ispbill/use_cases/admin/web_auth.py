"""Signing people in to the web: staff users of the console and customers of the portal.

Passwords are stored as argon2id hashes (argon2-cffi's defaults, re-hashed when the defaults
grow). Failed sign-ins are kept in ``login_attempts`` and throttle both the account name and
the source address, so guessing is slow whichever of the two an attacker varies. A staff user
may add a TOTP second factor (RFC 6238, pyotp); with it, the code is required, and each code
signs in once: the time step of the last one used is kept, and only a later step is accepted.

A signed-in browser holds a random session secret in a cookie; only its SHA-256 is stored, with
an idle expiry that slides on use and an absolute end. Roles are the API's (``admin``,
``reseller``, ``readonly``) and are checked by the same ``Principal`` (entrypoints/api/auth.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pyotp.utils import strings_equal
from sqlalchemy import func, select

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db.lookups import by_id
from ispbill.adapters.db.models import (
    STAFF_ROLES,
    Customer,
    LoginAttempt,
    LoginToken,
    PortalAccount,
    Reseller,
    StaffUser,
    WebSession,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.customers import validate_name
from ispbill.domain.errors import IspbillError, NotFound, ValidationError

PASSWORD_MIN = 10
PASSWORD_MAX = 200
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_SOURCE = 20
LINK_LIFETIME = timedelta(minutes=15)
_hasher = PasswordHasher()
# Verified against when an account does not exist, so a wrong name costs as long as a wrong
# password and the timing does not tell which accounts exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class SignInRefused(IspbillError):
    """Wrong credentials, a throttled account, or a disabled user (one message for all but
    throttling, so the refusal does not reveal which accounts exist)."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise ValidationError("password", f"must be at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise ValidationError("password", f"must be at most {PASSWORD_MAX} characters")
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


# -- throttling ---------------------------------------------------------------------------------


def _check_throttle(uow: UnitOfWork, subject: str, source: str | None, now: datetime) -> None:
    since = now - THROTTLE_WINDOW
    session = uow.session
    by_subject = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.subject == subject, LoginAttempt.attempted_at > since)
    )
    by_source = (
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.source == source, LoginAttempt.attempted_at > since)
        )
        if source
        else 0
    )
    if (by_subject or 0) >= MAX_FAILURES_PER_ACCOUNT or (by_source or 0) >= MAX_FAILURES_PER_SOURCE:
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise SignInRefused(f"too many failed sign-ins; try again in {minutes} minutes")


def _fail(uow: UnitOfWork, subject: str, source: str | None, now: datetime) -> SignInRefused:
    uow.session.add(LoginAttempt(subject=subject, source=source, attempted_at=now))
    uow.commit()
    return SignInRefused("wrong name, password or code")


# -- staff users --------------------------------------------------------------------------------


def add_staff(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    role: str,
    reseller_id: int | None,
    now: datetime,
    actor: str,
) -> StaffUser:
    name = validate_name(username, "username", 100).lower()
    if " " in name:
        raise ValidationError("username", "must not contain spaces")
    role = role.strip().lower()
    if role not in STAFF_ROLES:
        raise ValidationError("role", f"must be one of: {', '.join(STAFF_ROLES)}")
    if role == "reseller":
        if reseller_id is None:
            raise ValidationError("reseller", "a reseller user needs a reseller")
        by_id(uow.session, Reseller, reseller_id, field="reseller")
    elif reseller_id is not None:
        raise ValidationError("reseller", "only reseller users belong to a reseller")
    if uow.session.scalar(select(StaffUser.id).where(StaffUser.username == name)) is not None:
        raise ValidationError("username", f"{name!r} is taken")
    row = StaffUser(
        username=name,
        password_hash=hash_password(password),
        role=role,
        reseller_id=reseller_id,
        created_at=now,
    )
    uow.session.add(row)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="staff.created",
        subject_type="staff",
        subject_id=row.id,
        figures={"username": name, "role": role, "reseller_id": reseller_id},
    )
    uow.commit()
    return row


def list_staff(uow: UnitOfWork) -> list[StaffUser]:
    return list(uow.session.scalars(select(StaffUser).order_by(StaffUser.id)))


def _staff(uow: UnitOfWork, username: str) -> StaffUser:
    row = uow.session.scalar(
        select(StaffUser).where(StaffUser.username == username.strip().lower())
    )
    if row is None:
        raise NotFound("staff user", username, field="username")
    return row


def set_staff_password(
    uow: UnitOfWork, *, username: str, password: str, now: datetime, actor: str
) -> StaffUser:
    row = _staff(uow, username)
    row.password_hash = hash_password(password)
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="staff.password_set",
        subject_type="staff",
        subject_id=row.id,
    )
    uow.commit()
    return row


def enable_totp(uow: UnitOfWork, *, username: str, now: datetime, actor: str) -> str:
    """Give the user a new TOTP secret; returns the ``otpauth://`` URI for an authenticator."""
    row = _staff(uow, username)
    secret = pyotp.random_base32()
    row.totp_secret = secret
    row.totp_last_step = None
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="staff.totp_enabled",
        subject_type="staff",
        subject_id=row.id,
    )
    uow.commit()
    return pyotp.TOTP(secret).provisioning_uri(name=row.username, issuer_name="ispbill")


def disable_totp(uow: UnitOfWork, *, username: str, now: datetime, actor: str) -> StaffUser:
    row = _staff(uow, username)
    row.totp_secret = None
    row.totp_last_step = None
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="staff.totp_disabled",
        subject_type="staff",
        subject_id=row.id,
    )
    uow.commit()
    return row


def set_staff_enabled(
    uow: UnitOfWork, *, username: str, enabled: bool, now: datetime, actor: str
) -> StaffUser:
    row = _staff(uow, username)
    row.disabled_at = None if enabled else now
    if not enabled:  # a disabled user is signed out everywhere
        for open_session in uow.session.scalars(
            select(WebSession).where(WebSession.staff_id == row.id, WebSession.ended_at.is_(None))
        ):
            open_session.ended_at = now
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="staff.enabled" if enabled else "staff.disabled",
        subject_type="staff",
        subject_id=row.id,
    )
    uow.commit()
    return row


TOTP_DRIFT = 1  # time steps either side of now: an authenticator a little off still works


def _totp_step(secret: str, code: str, now: datetime, *, after: int | None) -> int | None:
    """The time step whose code ``code`` is (now's, or one either side), or None; a step not
    later than ``after`` (the last one used) does not count, so a code signs in only once."""
    totp = pyotp.TOTP(secret)
    given = code.strip().replace(" ", "")
    current = totp.timecode(now)
    for step in range(current - TOTP_DRIFT, current + TOTP_DRIFT + 1):
        if after is not None and step <= after:
            continue
        if strings_equal(given, totp.generate_otp(step)):
            return step
    return None


def sign_in_staff(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    code: str,
    source: str | None,
    now: datetime,
) -> StaffUser:
    """The staff user these credentials belong to, or ``SignInRefused``."""
    subject = f"staff:{username.strip().lower()[:100]}"
    uow.begin_write()
    _check_throttle(uow, subject, source, now)
    row = uow.session.scalar(
        select(StaffUser)
        .where(StaffUser.username == username.strip().lower())
        .with_for_update()  # two sign-ins with one code: the second waits, then sees its step
    )
    ok = _verify(row.password_hash if row else None, password)
    if row is None or not ok or row.disabled_at is not None:
        raise _fail(uow, subject, source, now)
    if row.totp_secret:
        step = _totp_step(row.totp_secret, code, now, after=row.totp_last_step)
        if step is None:
            raise _fail(uow, subject, source, now)
        row.totp_last_step = step
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    uow.commit()
    return row


# -- portal accounts ----------------------------------------------------------------------------


def _email(text: str) -> str:
    value = text.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or len(value) > 254 or " " in value:
        raise ValidationError("email", "must be an e-mail address like name@example.net")
    return value


def set_portal_login(
    uow: UnitOfWork,
    *,
    customer_id: int,
    email: str,
    password: str | None,
    now: datetime,
    actor: str,
) -> PortalAccount:
    """Let a customer sign in to the portal with ``email`` (and a password, if given; without
    one, the customer signs in through e-mailed one-time links)."""
    row = by_id(uow.session, Customer, customer_id, field="customer")
    address = _email(email)
    hashed = hash_password(password) if password else None
    taken = uow.session.scalar(select(PortalAccount).where(PortalAccount.email == address))
    if taken is not None and taken.customer_id != row.id:
        raise ValidationError("email", f"{address} already signs in another customer")
    account = uow.session.scalar(
        select(PortalAccount).where(PortalAccount.customer_id == row.id)
    ) or PortalAccount(customer_id=row.id, created_at=now)
    account.email = address
    if hashed is not None:
        account.password_hash = hashed
    uow.session.add(account)
    uow.session.flush()
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="portal.login_set",
        subject_type="customer",
        subject_id=row.id,
        customer_id=row.id,
        figures={"email": address, "password": hashed is not None},
    )
    uow.commit()
    return account


def portal_account(uow: UnitOfWork, customer_id: int) -> PortalAccount | None:
    return uow.session.scalar(select(PortalAccount).where(PortalAccount.customer_id == customer_id))


def sign_in_customer(
    uow: UnitOfWork, *, email: str, password: str, source: str | None, now: datetime
) -> int:
    """The customer id these portal credentials belong to, or ``SignInRefused``."""
    address = email.strip().lower()[:254]
    subject = f"portal:{address}"
    uow.begin_write()
    _check_throttle(uow, subject, source, now)
    account = uow.session.scalar(select(PortalAccount).where(PortalAccount.email == address))
    if not _verify(account.password_hash if account else None, password) or account is None:
        raise _fail(uow, subject, source, now)
    uow.commit()
    return account.customer_id


@dataclass(frozen=True)
class LoginLink:
    customer_id: int
    email: str
    secret: str


def request_login_link(
    uow: UnitOfWork, *, email: str, source: str | None, now: datetime
) -> LoginLink | None:
    """A one-time sign-in secret for the account of ``email``, or None when there is none
    (the caller says the same thing either way). Requests count towards throttling."""
    address = email.strip().lower()[:254]
    subject = f"portal:{address}"
    uow.begin_write()
    _check_throttle(uow, subject, source, now)
    # every request counts, so a mailbox cannot be flooded with links
    uow.session.add(LoginAttempt(subject=subject, source=source, attempted_at=now))
    account = uow.session.scalar(select(PortalAccount).where(PortalAccount.email == address))
    if account is None:
        uow.commit()
        return None
    secret = secrets.token_urlsafe(32)
    uow.session.add(
        LoginToken(
            token_hash=hash_secret(secret),
            customer_id=account.customer_id,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    uow.commit()
    return LoginLink(account.customer_id, account.email, secret)


def consume_login_link(uow: UnitOfWork, *, secret: str, now: datetime) -> int | None:
    """The customer a valid, unused, unexpired link signs in; the link is spent."""
    uow.begin_write()
    row = uow.session.scalar(
        select(LoginToken).where(LoginToken.token_hash == hash_secret(secret)).with_for_update()
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    row.used_at = now
    uow.commit()
    return row.customer_id


# -- sessions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


def start_session(
    uow: UnitOfWork,
    *,
    staff_id: int | None = None,
    customer_id: int | None = None,
    now: datetime,
    policy: SessionPolicy,
) -> str:
    """A new session; returns the secret for the cookie (stored only as its hash)."""
    secret = secrets.token_urlsafe(32)
    uow.session.add(
        WebSession(
            token_hash=hash_secret(secret),
            kind="staff" if staff_id is not None else "customer",
            staff_id=staff_id,
            customer_id=customer_id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.idle,
        )
    )
    uow.commit()
    return secret


def resolve_session(
    uow: UnitOfWork, *, secret: str, kind: str, now: datetime, policy: SessionPolicy
) -> WebSession | None:
    """The live session of this secret, its idle expiry moved on; None when it is unknown,
    ended, idle too long or older than the absolute lifetime."""
    if not secret:
        return None
    row = uow.session.scalar(select(WebSession).where(WebSession.token_hash == hash_secret(secret)))
    if row is None or row.kind != kind or row.ended_at is not None:
        return None
    if row.expires_at <= now or row.created_at + policy.absolute <= now:
        return None
    if kind == "staff":
        staff = uow.session.get(StaffUser, row.staff_id)
        if staff is None or staff.disabled_at is not None:
            return None
    if now - row.last_seen_at > timedelta(minutes=1):  # one write a minute, not per request
        row.last_seen_at = now
        row.expires_at = min(now + policy.idle, row.created_at + policy.absolute)
        uow.commit()
    return row


def end_session(uow: UnitOfWork, *, secret: str, now: datetime) -> None:
    row = uow.session.scalar(select(WebSession).where(WebSession.token_hash == hash_secret(secret)))
    if row is not None and row.ended_at is None:
        row.ended_at = now
        uow.commit()
