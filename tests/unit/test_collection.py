"""Collections: the non-payer policy and its day-counting conventions (domain/collection.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.collection import (
    CollectionAction,
    CollectionPolicy,
    CollectionStage,
    CollectionState,
    CombineRule,
    LiftReason,
    OpenInvoice,
    SettledWhen,
    ThrottleStage,
    evaluate,
    next_non_excluded,
    next_review_date,
    stage_due,
)
from ispbill.domain.errors import CurrencyMismatch, ValidationError
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.money import Money

CZK = "CZK"
DUE = date(2026, 3, 2)
CLEAR = CollectionState(CZK)
SUSPENDED = CollectionState(CZK, suspended_non_payer=True)
THROTTLED = CollectionState(CZK, throttled=True)


def czk(amount: int) -> Money:
    return Money.from_major(amount, CZK)


def inv(amount: int, due: date = DUE, number: str = "2026-0001") -> OpenInvoice:
    return OpenInvoice(number=number, due_date=due, outstanding=czk(amount))


def day(offset: int, base: date = DUE) -> date:
    return base + timedelta(days=offset)


def act(
    policy: CollectionPolicy,
    invoices: list[OpenInvoice],
    today: date,
    current: CollectionState = CLEAR,
) -> CollectionAction:
    return evaluate(policy, invoices=invoices, today=today, current=current).action


# -- the 14-days rule: "unpaid the given days after its due date" = the whole 14 days passed ---


def test_suspended_on_day_15_not_day_14() -> None:
    policy = CollectionPolicy(days_after_due=14)
    invoices = [inv(500)]
    assert act(policy, invoices, day(0)) is CollectionAction.NONE
    assert act(policy, invoices, day(14)) is CollectionAction.NONE
    decision = evaluate(policy, invoices=invoices, today=day(15), current=CLEAR)
    assert decision.action is CollectionAction.SUSPEND
    assert decision.reason is SuspensionReason.NON_PAYER
    assert decision.figures.days_overdue == 15
    assert decision.figures.overdue_total == czk(500)
    assert decision.figures.oldest_invoice == "2026-0001"
    assert decision.figures.oldest_due_date == DUE


def test_zero_days_after_due_suspends_the_day_after_due() -> None:
    policy = CollectionPolicy(days_after_due=0)
    assert act(policy, [inv(500)], day(0)) is CollectionAction.NONE
    assert act(policy, [inv(500)], day(1)) is CollectionAction.SUSPEND


def test_figures_name_the_oldest_overdue_invoice_and_sum_only_overdue_ones() -> None:
    policy = CollectionPolicy(days_after_due=14)
    invoices = [
        inv(300, day(-31), "2026-0002"),
        inv(200, day(-62), "2026-0001"),
        inv(100, day(10), "2026-0003"),  # not yet due: not overdue
        inv(0, day(-90), "2025-0099"),  # paid
    ]
    decision = evaluate(policy, invoices=invoices, today=day(0), current=CLEAR)
    assert decision.action is CollectionAction.SUSPEND
    assert decision.figures.oldest_invoice == "2026-0001"
    assert decision.figures.days_overdue == 62
    assert decision.figures.overdue_total == czk(500)


# -- grace period from the customer class ---------------------------------------------------


def test_grace_adds_days() -> None:
    policy = CollectionPolicy(days_after_due=14, grace_days=7)
    assert act(policy, [inv(500)], day(21)) is CollectionAction.NONE
    assert act(policy, [inv(500)], day(22)) is CollectionAction.SUSPEND


def test_grace_also_delays_the_amount_rule() -> None:
    policy = CollectionPolicy(
        days_after_due=14, grace_days=3, minimum_outstanding=czk(100), combine=CombineRule.EITHER
    )
    assert act(policy, [inv(500)], day(3)) is CollectionAction.NONE
    assert act(policy, [inv(500)], day(4)) is CollectionAction.SUSPEND


# -- the minimum amount and how the two rules combine ---------------------------------------


def test_debt_below_minimum_does_not_suspend() -> None:
    policy = CollectionPolicy(days_after_due=14, minimum_outstanding=czk(300))
    assert policy.combine is CombineRule.BOTH  # the default
    assert act(policy, [inv(299)], day(400)) is CollectionAction.NONE
    assert act(policy, [inv(300)], day(15)) is CollectionAction.SUSPEND


def test_both_needs_the_days_and_the_amount() -> None:
    policy = CollectionPolicy(
        days_after_due=14, minimum_outstanding=czk(300), combine=CombineRule.BOTH
    )
    old_small = inv(100, day(-30), "A")
    new_big = inv(500, day(-1), "B")
    assert act(policy, [old_small], day(0)) is CollectionAction.NONE
    assert act(policy, [new_big], day(0)) is CollectionAction.NONE
    # Together: one invoice is 30 days overdue and the overdue total is 600.
    assert act(policy, [old_small, new_big], day(0)) is CollectionAction.SUSPEND


def test_either_needs_one_of_them() -> None:
    policy = CollectionPolicy(
        days_after_due=14, minimum_outstanding=czk(300), combine=CombineRule.EITHER
    )
    assert act(policy, [inv(100)], day(14)) is CollectionAction.NONE
    assert act(policy, [inv(100)], day(15)) is CollectionAction.SUSPEND  # days alone
    assert act(policy, [inv(500)], day(1)) is CollectionAction.SUSPEND  # amount alone
    assert act(policy, [inv(500)], day(0)) is CollectionAction.NONE  # not overdue yet


def test_without_minimum_both_rules_are_the_days_rule() -> None:
    for combine in CombineRule:
        policy = CollectionPolicy(days_after_due=5, combine=combine)
        assert act(policy, [inv(1)], day(5)) is CollectionAction.NONE
        assert act(policy, [inv(1)], day(6)) is CollectionAction.SUSPEND


# -- settled and lifting --------------------------------------------------------------------


def test_zero_overdue_lifts_only_when_everything_overdue_is_paid() -> None:
    policy = CollectionPolicy(days_after_due=14, reactivation_fee=czk(50))
    assert act(policy, [inv(1)], day(20), SUSPENDED) is CollectionAction.NONE
    decision = evaluate(policy, invoices=[inv(0)], today=day(20), current=SUSPENDED)
    assert decision.action is CollectionAction.LIFT
    assert decision.lift_reason is LiftReason.SETTLED
    assert decision.lift_suspension
    assert decision.reactivation_fee == czk(50)


def test_an_invoice_not_yet_overdue_does_not_block_the_lift() -> None:
    policy = CollectionPolicy(days_after_due=14)
    invoices = [inv(0, day(-30), "old"), inv(500, day(5), "next")]
    assert act(policy, invoices, day(0), SUSPENDED) is CollectionAction.LIFT


def test_below_minimum_lifts_once_the_overdue_total_drops_under_it() -> None:
    policy = CollectionPolicy(
        days_after_due=14,
        minimum_outstanding=czk(300),
        settled_when=SettledWhen.BELOW_MINIMUM,
    )
    assert act(policy, [inv(300)], day(20), SUSPENDED) is CollectionAction.NONE
    assert act(policy, [inv(299)], day(20), SUSPENDED) is CollectionAction.LIFT


def test_lift_waits_while_the_suspension_rule_still_holds() -> None:
    # "either" with below_minimum: a small debt is below the minimum yet old enough to suspend;
    # lifting it would only suspend it again the same day.
    policy = CollectionPolicy(
        days_after_due=14,
        minimum_outstanding=czk(300),
        combine=CombineRule.EITHER,
        settled_when=SettledWhen.BELOW_MINIMUM,
    )
    assert act(policy, [inv(100)], day(20), SUSPENDED) is CollectionAction.NONE
    assert act(policy, [inv(100)], day(10), SUSPENDED) is CollectionAction.LIFT


def test_lift_also_removes_the_throttle() -> None:
    policy = CollectionPolicy(days_after_due=14)
    both = CollectionState(CZK, suspended_non_payer=True, throttled=True)
    decision = evaluate(policy, invoices=[], today=day(20), current=both)
    assert decision.action is CollectionAction.LIFT
    assert decision.lift_suspension
    assert decision.lift_throttle


def test_no_reactivation_fee_without_a_setting_or_for_a_throttle_only() -> None:
    plain = CollectionPolicy(days_after_due=14)
    assert evaluate(plain, invoices=[], today=day(20), current=SUSPENDED).reactivation_fee is None
    staged = CollectionPolicy(
        days_after_due=14,
        throttle=ThrottleStage(after_days=7, speed_kbps_down=512, speed_kbps_up=256),
        reactivation_fee=czk(50),
    )
    decision = evaluate(staged, invoices=[], today=day(10), current=THROTTLED)
    assert decision.action is CollectionAction.LIFT
    assert decision.lift_throttle
    assert not decision.lift_suspension
    assert decision.reactivation_fee is None


# -- the policy switch (pozastavit_neplatice) -----------------------------------------------


def test_disabled_policy_lifts_every_automatic_suspension_without_a_fee() -> None:
    policy = CollectionPolicy(enabled=False, reactivation_fee=czk(50))
    state = CollectionState(CZK, suspended_non_payer=True, throttled=True)
    decision = evaluate(policy, invoices=[inv(10_000)], today=day(400), current=state)
    assert decision.action is CollectionAction.LIFT
    assert decision.lift_reason is LiftReason.POLICY_DISABLED
    assert decision.lift_suspension
    assert decision.lift_throttle
    assert decision.reactivation_fee is None


def test_disabled_policy_never_suspends_and_enabling_re_evaluates() -> None:
    invoices = [inv(500)]
    assert act(CollectionPolicy(enabled=False), invoices, day(30)) is CollectionAction.NONE
    assert act(CollectionPolicy(enabled=True), invoices, day(30)) is CollectionAction.SUSPEND
    assert (
        next_review_date(
            CollectionPolicy(enabled=False), invoices=invoices, today=day(0), current=CLEAR
        )
        is None
    )


# -- holidays -------------------------------------------------------------------------------


def test_a_holiday_postpones_the_start_of_a_suspension() -> None:
    holidays = frozenset({day(15), day(16)})
    policy = CollectionPolicy(days_after_due=14, exclusion_dates=holidays)
    decision = evaluate(policy, invoices=[inv(500)], today=day(15), current=CLEAR)
    assert decision.action is CollectionAction.POSTPONE
    assert decision.stage is CollectionStage.SUSPEND
    assert decision.on == day(17)
    assert act(policy, [inv(500)], day(16)) is CollectionAction.POSTPONE
    assert act(policy, [inv(500)], day(17)) is CollectionAction.SUSPEND


def test_a_holiday_does_not_stop_a_lift() -> None:
    policy = CollectionPolicy(days_after_due=14, exclusion_dates=frozenset({day(20)}))
    assert act(policy, [], day(20), SUSPENDED) is CollectionAction.LIFT


def test_next_non_excluded() -> None:
    assert next_non_excluded(day(0), frozenset()) == day(0)
    assert next_non_excluded(day(0), [day(0), day(1), day(3)]) == day(2)


# -- staged collection: throttle, then suspend; reminders -----------------------------------


def test_throttle_then_suspend() -> None:
    stage = ThrottleStage(after_days=7, speed_kbps_down=512, speed_kbps_up=256)
    policy = CollectionPolicy(days_after_due=14, throttle=stage)
    invoices = [inv(500)]
    assert act(policy, invoices, day(7)) is CollectionAction.NONE
    decision = evaluate(policy, invoices=invoices, today=day(8), current=CLEAR)
    assert decision.action is CollectionAction.THROTTLE
    assert decision.throttle == stage
    assert act(policy, invoices, day(8), THROTTLED) is CollectionAction.NONE
    assert act(policy, invoices, day(14), THROTTLED) is CollectionAction.NONE
    assert act(policy, invoices, day(15), THROTTLED) is CollectionAction.SUSPEND
    # A tick after downtime goes straight to the suspension.
    assert act(policy, invoices, day(30)) is CollectionAction.SUSPEND


def test_throttle_respects_the_minimum_amount() -> None:
    stage = ThrottleStage(after_days=7, speed_kbps_down=512, speed_kbps_up=256)
    policy = CollectionPolicy(days_after_due=14, throttle=stage, minimum_outstanding=czk(300))
    assert act(policy, [inv(100)], day(10)) is CollectionAction.NONE
    assert act(policy, [inv(300)], day(10)) is CollectionAction.THROTTLE


def test_reminders_come_n_days_before_each_stage() -> None:
    stage = ThrottleStage(after_days=7, speed_kbps_down=512, speed_kbps_up=256)
    policy = CollectionPolicy(days_after_due=14, throttle=stage, reminder_days_before=3)
    invoices = [inv(500)]
    assert act(policy, invoices, day(4)) is CollectionAction.NONE
    first = evaluate(policy, invoices=invoices, today=day(5), current=CLEAR)
    assert first.action is CollectionAction.REMIND
    assert (first.stage, first.on) == (CollectionStage.THROTTLE, day(8))
    # The whole window reminds, so a missed tick still sends it (the engine sends it once).
    assert act(policy, invoices, day(7)) is CollectionAction.REMIND
    assert act(policy, invoices, day(11), THROTTLED) is CollectionAction.NONE
    second = evaluate(policy, invoices=invoices, today=day(12), current=THROTTLED)
    assert second.action is CollectionAction.REMIND
    assert (second.stage, second.on) == (CollectionStage.SUSPEND, day(15))


def test_the_suspension_reminder_counts_from_the_postponed_start() -> None:
    policy = CollectionPolicy(
        days_after_due=14, reminder_days_before=2, exclusion_dates=frozenset({day(15)})
    )
    assert act(policy, [inv(500)], day(13)) is CollectionAction.NONE
    decision = evaluate(policy, invoices=[inv(500)], today=day(14), current=CLEAR)
    assert (decision.action, decision.on) == (CollectionAction.REMIND, day(16))


def test_no_reminder_for_a_debt_that_will_never_suspend() -> None:
    policy = CollectionPolicy(
        days_after_due=14, minimum_outstanding=czk(300), reminder_days_before=3
    )
    assert act(policy, [inv(100)], day(13)) is CollectionAction.NONE


def test_no_reminder_while_suspended() -> None:
    policy = CollectionPolicy(days_after_due=14, reminder_days_before=3)
    assert act(policy, [inv(500)], day(30), SUSPENDED) is CollectionAction.NONE


# -- next review date ------------------------------------------------------------------------


def test_next_review_date_is_the_next_reminder_or_stage_day() -> None:
    policy = CollectionPolicy(days_after_due=14, reminder_days_before=3)
    invoices = [inv(500)]
    assert next_review_date(policy, invoices=invoices, today=day(-5), current=CLEAR) == day(1)
    assert next_review_date(policy, invoices=invoices, today=day(1), current=CLEAR) == day(12)
    assert next_review_date(policy, invoices=invoices, today=day(12), current=CLEAR) == day(15)
    assert next_review_date(policy, invoices=[], today=day(12), current=CLEAR) is None


def test_next_review_date_of_a_postponed_suspension_is_its_start() -> None:
    policy = CollectionPolicy(
        days_after_due=14, exclusion_dates=frozenset({day(15), day(16), day(17)})
    )
    assert next_review_date(policy, invoices=[inv(500)], today=day(15), current=CLEAR) == day(16)
    assert stage_due(
        policy, CollectionStage.SUSPEND, invoices=[inv(500)], today=day(15), currency=CZK
    )


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"days_after_due": -1}, "days_after_due"),
        ({"grace_days": 366}, "grace_days"),
        ({"combine": "any"}, "combine"),
        ({"settled_when": "never"}, "settled_when"),
        ({"settled_when": "below_minimum"}, "settled_when"),
        ({"minimum_outstanding": Money(0, CZK)}, "minimum_outstanding"),
        ({"reactivation_fee": Money(-1, CZK)}, "reactivation_fee"),
        (
            {"minimum_outstanding": Money(100, CZK), "reactivation_fee": Money(100, "EUR")},
            "reactivation_fee",
        ),
        ({"reminder_days_before": 0}, "reminder_days_before"),
        (
            {"throttle": ThrottleStage(after_days=14, speed_kbps_down=1, speed_kbps_up=1)},
            "throttle.after_days",
        ),
        ({"exclusion_dates": frozenset({datetime(2026, 1, 1)})}, "exclusion_dates"),
        ({"enabled": 1}, "enabled"),
    ],
)
def test_policy_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CollectionPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_policy_coerces_text_settings() -> None:
    policy = CollectionPolicy(combine="either", settled_when="zero_overdue")  # type: ignore[arg-type]
    assert policy.combine is CombineRule.EITHER
    assert policy.settled_when is SettledWhen.ZERO_OVERDUE


def test_throttle_and_invoice_validation() -> None:
    with pytest.raises(ValidationError, match=r"throttle\.speed_kbps_up"):
        ThrottleStage(after_days=1, speed_kbps_down=1, speed_kbps_up=0)
    with pytest.raises(ValidationError, match="outstanding"):
        OpenInvoice("X", DUE, Money(-1, CZK))
    with pytest.raises(ValidationError, match="number"):
        OpenInvoice(" ", DUE, Money(1, CZK))


def test_invoices_in_another_currency_are_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        evaluate(
            CollectionPolicy(),
            invoices=[OpenInvoice("X", DUE, Money(100, "EUR"))],
            today=day(30),
            current=CLEAR,
        )


# -- properties -----------------------------------------------------------------------------

START = date(2026, 1, 1)
offsets = st.integers(min_value=0, max_value=120)


@st.composite
def policies(draw: st.DrawFn) -> CollectionPolicy:
    days = draw(st.integers(min_value=0, max_value=30))
    minimum = draw(st.none() | st.integers(min_value=1, max_value=1000).map(czk))
    settled = SettledWhen.ZERO_OVERDUE
    if minimum is not None:
        settled = draw(st.sampled_from(SettledWhen))
    throttle = None
    if days > 0 and draw(st.booleans()):
        after = draw(st.integers(min_value=0, max_value=days - 1))
        throttle = ThrottleStage(after_days=after, speed_kbps_down=512, speed_kbps_up=256)
    holidays = draw(st.frozensets(offsets.map(lambda n: START + timedelta(days=n)), max_size=40))
    return CollectionPolicy(
        days_after_due=days,
        minimum_outstanding=minimum,
        grace_days=draw(st.integers(min_value=0, max_value=10)),
        combine=draw(st.sampled_from(CombineRule)),
        settled_when=settled,
        throttle=throttle,
        reminder_days_before=draw(st.none() | st.integers(min_value=1, max_value=5)),
        exclusion_dates=holidays,
    )


def invoice_lists(paid: bool = False) -> st.SearchStrategy[list[OpenInvoice]]:
    amounts = st.just(0) if paid else st.integers(min_value=0, max_value=2000)
    one = st.builds(
        lambda n, amount: OpenInvoice(
            number=f"2026-{n:04d}",
            due_date=START + timedelta(days=n),
            outstanding=czk(amount),
        ),
        offsets,
        amounts,
    )
    return st.lists(one, max_size=5, unique_by=lambda i: i.number)


@given(policies(), invoice_lists(), offsets, st.integers(min_value=0, max_value=200))
def test_more_days_overdue_never_unsuspends(
    policy: CollectionPolicy, invoices: list[OpenInvoice], start: int, extra: int
) -> None:
    today = START + timedelta(days=start)
    later = today + timedelta(days=extra)
    first = evaluate(policy, invoices=invoices, today=today, current=CLEAR)
    if first.action in (CollectionAction.SUSPEND, CollectionAction.POSTPONE):
        assert stage_due(
            policy, CollectionStage.SUSPEND, invoices=invoices, today=later, currency=CZK
        )
        again = evaluate(policy, invoices=invoices, today=later, current=SUSPENDED)
        assert again.action is CollectionAction.NONE


@given(policies(), invoice_lists(paid=True), offsets, st.booleans(), st.booleans())
def test_a_fully_paid_customer_is_never_suspended(
    policy: CollectionPolicy,
    invoices: list[OpenInvoice],
    start: int,
    suspended: bool,
    throttled: bool,
) -> None:
    state = CollectionState(CZK, suspended_non_payer=suspended, throttled=throttled)
    today = START + timedelta(days=start)
    decision = evaluate(policy, invoices=invoices, today=today, current=state)
    if suspended or throttled:
        assert decision.action is CollectionAction.LIFT
    else:
        assert decision.action is CollectionAction.NONE
    assert next_review_date(policy, invoices=invoices, today=today, current=state) is None


def _walk(
    policy: CollectionPolicy, invoices: list[OpenInvoice], days: int
) -> list[tuple[date, CollectionAction, CollectionState]]:
    """Run a daily tick from START, applying each decision, as the engine would."""
    state = CLEAR
    seen = []
    for n in range(days):
        today = START + timedelta(days=n)
        decision = evaluate(policy, invoices=invoices, today=today, current=state)
        seen.append((today, decision.action, state))
        if decision.action is CollectionAction.SUSPEND:
            state = CollectionState(CZK, suspended_non_payer=True, throttled=state.throttled)
        elif decision.action is CollectionAction.THROTTLE:
            state = CollectionState(CZK, throttled=True)
    return seen


@given(policies(), invoice_lists())
def test_the_suspension_day_is_never_an_exclusion_date(
    policy: CollectionPolicy, invoices: list[OpenInvoice]
) -> None:
    for today, action, _state in _walk(policy, invoices, 200):
        if action is CollectionAction.SUSPEND:
            assert today not in policy.exclusion_dates
        if action is CollectionAction.POSTPONE:
            assert today in policy.exclusion_dates


@given(policies(), invoice_lists())
def test_nothing_changes_before_the_next_review_date(
    policy: CollectionPolicy, invoices: list[OpenInvoice]
) -> None:
    quiet = (CollectionAction.NONE, CollectionAction.REMIND, CollectionAction.POSTPONE)
    for state in (CLEAR, THROTTLED, SUSPENDED):
        today = START
        while today < START + timedelta(days=200):
            decision = evaluate(policy, invoices=invoices, today=today, current=state)
            review = next_review_date(policy, invoices=invoices, today=today, current=state)
            end = review if review is not None else START + timedelta(days=200)
            if decision.action in quiet:
                probe = today + timedelta(days=1)
                while probe < end:
                    again = evaluate(policy, invoices=invoices, today=probe, current=state)
                    assert (again.action, again.stage, again.on) == (
                        decision.action,
                        decision.stage,
                        decision.on,
                    )
                    probe += timedelta(days=1)
            if review is None:
                break
            today = review
