"""The reminder e-mail's text and recipients (``domain/notifications``), without a database."""

from __future__ import annotations

from datetime import date

from ispbill.domain.collection import CollectionStage
from ispbill.domain.money import Money
from ispbill.domain.notifications import Reminder, reminder_message, reminder_recipients


def reminder(stage: CollectionStage) -> Reminder:
    return Reminder(
        customer_name="Dan",
        amount=Money(1234_50, "EUR"),
        invoice="2026-000017",
        due_date=date(2026, 1, 15),
        stage=stage,
        starts_on=date(2026, 1, 23),
        portal_url="https://isp.test/portal",
    )


def test_a_throttle_reminder_says_slowed_down_with_the_figures() -> None:
    message = reminder_message(reminder(CollectionStage.THROTTLE), "en_US", lambda text: text)
    assert message.subject == "Payment reminder: €1,234.50 overdue"
    assert message.body.splitlines() == [
        "Dear Dan,",
        "",
        "€1,234.50 is overdue; invoice 2026-000017 was due on January 15, 2026.",
        "Unless it is paid, your connection will be slowed down on January 23, 2026.",
        "",
        "Pay in the customer portal: https://isp.test/portal",
        "If you have paid in the last few days, thank you, and please ignore this.",
    ]


def test_a_suspension_reminder_in_czech_formats_dates_and_money_there() -> None:
    message = reminder_message(reminder(CollectionStage.SUSPEND), "cs_CZ", lambda text: text)
    assert "1\xa0234,50\xa0€" in message.subject
    assert "will be suspended on 23. ledna 2026." in message.body


def test_the_customers_own_addresses_win_over_the_portal_account() -> None:
    assert reminder_recipients(["a@x.test", "b@x.test"], "p@x.test") == ["a@x.test", "b@x.test"]
    assert reminder_recipients(None, "p@x.test") == ["p@x.test"]
    assert reminder_recipients([], "p@x.test") == ["p@x.test"]
    assert reminder_recipients(None, None) == []
