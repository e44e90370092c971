"""What collections' e-mails say and to whom (a reminder before a stage, the notice that a
service was suspended or slowed down, the notice that it was restored), kept pure: the texts go through the
``gettext`` the caller passes (the customer's catalog), dates and money through Babel in the
customer's locale, so the same figures read the same in every language.

Where the address comes from: the customer's own notification list when set, else the
e-mail of its portal account. A customer class's list is left out on purpose: every customer
of the class shares it, so it is not where one subscriber's debt should be written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from babel.dates import format_date

from ispbill.domain.collection import CollectionStage
from ispbill.domain.money import Money

Gettext = Callable[[str], str]


class NotificationStatus(StrEnum):
    """Where a queued e-mail stands: waiting for the sender (again, after a failure it will
    retry), handed to the relay, or given up on."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def reminder_recipients(
    own: Sequence[str] | None, portal_email: str | None, primary_email: str | None = None
) -> list[str]:
    """The addresses a reminder goes to: the customer's own notification list, else the
    portal login's address, else the primary contact e-mail; empty when the customer has none."""
    if own:
        return list(own)
    if portal_email:
        return [portal_email]
    return [primary_email] if primary_email else []


@dataclass(frozen=True)
class Reminder:
    """The figures of one reminder: what is owed, since when, and what happens on which day."""

    customer_name: str
    amount: Money
    invoice: str
    due_date: date
    stage: CollectionStage
    starts_on: date
    portal_url: str


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def reminder_message(reminder: Reminder, locale: str, gettext: Gettext) -> Message:
    """The e-mail for a reminder, in ``locale`` with its catalog's ``gettext``."""
    values = {
        "name": reminder.customer_name,
        "amount": reminder.amount.format(locale),
        "invoice": reminder.invoice,
        "due_date": format_date(reminder.due_date, format="long", locale=locale),
        "day": format_date(reminder.starts_on, format="long", locale=locale),
        "url": reminder.portal_url,
    }
    if reminder.stage is CollectionStage.THROTTLE:
        consequence = gettext("Unless it is paid, your connection will be slowed down on %(day)s.")
    else:
        consequence = gettext("Unless it is paid, your service will be suspended on %(day)s.")
    lines = [
        gettext("Dear %(name)s,"),
        "",
        gettext("%(amount)s is overdue; invoice %(invoice)s was due on %(due_date)s."),
        consequence,
        "",
        gettext("Pay in the customer portal: %(url)s"),
        gettext("If you have paid in the last few days, thank you, and please ignore this."),
    ]
    return Message(
        subject=gettext("Payment reminder: %(amount)s overdue") % values,
        body="\n".join(line % values for line in lines) + "\n",
    )


@dataclass(frozen=True)
class Suspension:
    """The figures of a suspension (or throttle) notice: which services, since when, and what
    must be paid to end it."""

    customer_name: str
    services: tuple[str, ...]
    stage: CollectionStage
    since: date
    amount: Money
    invoice: str
    due_date: date
    portal_url: str


def suspension_message(notice: Suspension, locale: str, gettext: Gettext) -> Message:
    """The e-mail telling a subscriber that collections suspended or slowed down a service."""
    values = {
        "name": notice.customer_name,
        "services": ", ".join(notice.services),
        "day": format_date(notice.since, format="long", locale=locale),
        "amount": notice.amount.format(locale),
        "invoice": notice.invoice,
        "due_date": format_date(notice.due_date, format="long", locale=locale),
        "url": notice.portal_url,
    }
    if notice.stage is CollectionStage.THROTTLE:
        subject = gettext("Connection slowed down: %(amount)s overdue")
        what = gettext(
            "Since %(day)s your connection (%(services)s) is slowed down for non-payment."
        )
    else:
        subject = gettext("Service suspended: %(amount)s overdue")
        what = gettext("Since %(day)s your service (%(services)s) is suspended for non-payment.")
    lines = [
        gettext("Dear %(name)s,"),
        "",
        what,
        gettext("%(amount)s is overdue; invoice %(invoice)s was due on %(due_date)s."),
        gettext("The service is restored as soon as the overdue amount is paid."),
        "",
        gettext("Pay in the customer portal: %(url)s"),
    ]
    return Message(subject=subject % values, body="\n".join(line % values for line in lines) + "\n")


@dataclass(frozen=True)
class Restoration:
    """The figures of a "service restored" notice; ``promise_until`` when a promise to pay
    restored it (the stage comes back after that day unless the debt is paid)."""

    customer_name: str
    services: tuple[str, ...]
    since: date
    promise_until: date | None
    portal_url: str


def restoration_message(notice: Restoration, locale: str, gettext: Gettext) -> Message:
    """The e-mail telling a subscriber that a payment or a promise to pay restored a service."""
    values = {
        "name": notice.customer_name,
        "services": ", ".join(notice.services),
        "day": format_date(notice.since, format="long", locale=locale),
        "until": format_date(notice.promise_until, format="long", locale=locale)
        if notice.promise_until
        else "",
        "url": notice.portal_url,
    }
    if notice.promise_until is None:
        why = gettext("Thank you for your payment.")
    else:
        why = gettext(
            "This is on your promise to pay: unless the overdue amount is paid by %(until)s, "
            "the service will be limited again."
        )
    lines = [
        gettext("Dear %(name)s,"),
        "",
        gettext("Since %(day)s your service (%(services)s) runs normally again."),
        why,
        "",
        gettext("Your account in the customer portal: %(url)s"),
    ]
    return Message(
        subject=gettext("Service restored") % values,
        body="\n".join(line % values for line in lines) + "\n",
    )


def service_label(plan_name: str, service_id: int) -> str:
    """How a message names a service: the plan the subscriber knows and the service's number
    (two services of one plan stay apart)."""
    return f"{plan_name} #{service_id}"
