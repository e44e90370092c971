"""What a collection reminder says and to whom, kept pure: the texts go through the
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

from babel.dates import format_date

from ispbill.domain.collection import CollectionStage
from ispbill.domain.money import Money

Gettext = Callable[[str], str]


def reminder_recipients(own: Sequence[str] | None, portal_email: str | None) -> list[str]:
    """The addresses a reminder goes to; empty when the customer has none."""
    if own:
        return list(own)
    return [portal_email] if portal_email else []


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
