"""Collections' e-mail texts (reminder, suspension or throttle, restoration) and recipients
(``domain/notifications``), without a database."""

from __future__ import annotations

from datetime import date

from ispbill.domain.collection import CollectionStage
from ispbill.domain.money import Money
from ispbill.domain.notifications import (
    Reminder,
    Restoration,
    Suspension,
    reminder_message,
    reminder_recipients,
    restoration_message,
    service_label,
    suspension_message,
)


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
    assert reminder_recipients(None, None, "c@x.test") == ["c@x.test"]  # primary contact
    assert reminder_recipients(None, "p@x.test", "c@x.test") == ["p@x.test"]


def suspension(stage: CollectionStage) -> Suspension:
    return Suspension(
        customer_name="Dan",
        services=(service_label("Home", 7), service_label("Home", 9)),
        stage=stage,
        since=date(2026, 1, 30),
        amount=Money(1234_50, "EUR"),
        invoice="2026-000017",
        due_date=date(2026, 1, 15),
        portal_url="https://isp.test/portal",
    )


def test_a_suspension_notice_names_the_services_the_day_the_debt_and_the_portal() -> None:
    message = suspension_message(suspension(CollectionStage.SUSPEND), "en_US", lambda t: t)
    assert message.subject == "Service suspended: €1,234.50 overdue"
    assert message.body.splitlines() == [
        "Dear Dan,",
        "",
        "Since January 30, 2026 your service (Home #7, Home #9) is suspended for non-payment.",
        "€1,234.50 is overdue; invoice 2026-000017 was due on January 15, 2026.",
        "The service is restored as soon as the overdue amount is paid.",
        "",
        "Pay in the customer portal: https://isp.test/portal",
    ]


def test_a_throttle_notice_says_slowed_down_and_formats_for_czech() -> None:
    message = suspension_message(suspension(CollectionStage.THROTTLE), "cs_CZ", lambda t: t)
    assert message.subject == "Connection slowed down: 1\xa0234,50\xa0€ overdue"
    assert "Since 30. ledna 2026 your connection (Home #7, Home #9) is slowed down" in message.body


def restoration(until: date | None) -> Restoration:
    return Restoration(
        customer_name="Dan",
        services=(service_label("Home", 7),),
        since=date(2026, 1, 31),
        promise_until=until,
        portal_url="https://isp.test/portal",
    )


def test_a_restoration_by_payment_thanks_for_it() -> None:
    message = restoration_message(restoration(None), "en_US", lambda t: t)
    assert message.subject == "Service restored"
    assert message.body.splitlines() == [
        "Dear Dan,",
        "",
        "Since January 31, 2026 your service (Home #7) runs normally again.",
        "Thank you for your payment.",
        "",
        "Your account in the customer portal: https://isp.test/portal",
    ]


def test_a_restoration_by_promise_says_until_when() -> None:
    message = restoration_message(restoration(date(2026, 2, 3)), "en_US", lambda t: t)
    assert "Thank you" not in message.body
    assert "unless the overdue amount is paid by February 3, 2026, the service will be limited" in (
        message.body
    )
