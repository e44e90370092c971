"""The pure RADIUS rules: the reply builder, CoA vs Disconnect, accounting, FUP tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ispbill.domain.accounting import (
    GIGAWORD,
    AcctRecord,
    AcctStatus,
    SessionState,
    apply_accounting,
    parse_accounting,
)
from ispbill.domain.errors import ValidationError
from ispbill.domain.fup import decide_fup, reached_tier, throttle_for
from ispbill.domain.lifecycle import ServiceState, SuspensionReason
from ispbill.domain.plans import FupAction, FupTier, Speed
from ispbill.domain.radius import (
    AccessView,
    Command,
    GardenKind,
    GardenRule,
    RadiusPolicy,
    Vendor,
    Verdict,
    build_reply,
    command_for,
    mikrotik_rate,
    parse_attribute_map,
    parse_garden_map,
    parse_reason_list,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PLAN = Speed(50_000, 10_000)


def view(
    state: ServiceState = ServiceState.ACTIVE, reason: str | None = None, **kw: object
) -> AccessView:
    return AccessView(service_id=1, state=state, reason=reason, speed=PLAN, **kw)  # type: ignore[arg-type]


# --- the reply --------------------------------------------------------------------------------


def test_active_mikrotik_gets_the_plan_rate_upload_first() -> None:
    reply = build_reply(view(vendor=Vendor.MIKROTIK, static_ip="10.1.2.3"), RadiusPolicy())
    assert reply.verdict is Verdict.ACCEPT
    assert reply.get("Mikrotik-Rate-Limit") == "10M/50M"
    assert reply.get("Framed-IP-Address") == "10.1.2.3"
    assert reply.get("Acct-Interim-Interval") == "300"


def test_generic_nas_uses_the_attribute_map() -> None:
    policy = RadiusPolicy(attribute_map={"Cisco-AVPair": "rate={down_kbps}k/{up_kbps}k"})
    reply = build_reply(view(vendor=Vendor.GENERIC), policy)
    assert reply.attributes[0] == ("Cisco-AVPair", "rate=50000k/10000k")
    default = build_reply(view(), RadiusPolicy())
    assert default.get("WISPr-Bandwidth-Max-Down") == "50000000"
    assert default.get("WISPr-Bandwidth-Max-Up") == "10000000"


def test_a_throttle_only_ever_slows_down() -> None:
    reply = build_reply(view(vendor=Vendor.MIKROTIK, throttle=Speed(5000, 20_000)), RadiusPolicy())
    assert reply.get("Mikrotik-Rate-Limit") == "10M/5M"
    assert reply.message == "throttled"
    assert mikrotik_rate(Speed(1500, 512)) == "512k/1500k"


@pytest.mark.parametrize("reason", [r.value for r in SuspensionReason])
def test_each_suspension_reason_goes_to_its_walled_garden(reason: str) -> None:
    policy = RadiusPolicy(
        garden={"non_payer": GardenRule(GardenKind.ADDRESS_LIST, "unpaid")},
        garden_default=GardenRule(GardenKind.POOL, "garden-pool"),
        garden_speed=Speed(1000, 1000),
    )
    reply = build_reply(view(ServiceState.SUSPENDED, reason, vendor=Vendor.MIKROTIK), policy)
    assert reply.verdict is Verdict.GARDEN
    assert reply.get("Reply-Message") == f"suspended: {reason}"
    assert reply.get("Mikrotik-Rate-Limit") == "1M/1M"
    if reason == "non_payer":
        assert reply.get("Mikrotik-Address-List") == "unpaid"
        assert reply.get("Framed-Pool") is None
    else:
        assert reply.get("Framed-Pool") == "garden-pool"


@pytest.mark.parametrize(
    ("state", "key"), [(ServiceState.DEACTIVATED, "deactivated"), (ServiceState.PAUSED, "paused")]
)
def test_deactivated_and_paused_are_blocked_or_rejected_per_setting(
    state: ServiceState, key: str
) -> None:
    garden = build_reply(view(state), RadiusPolicy())
    assert garden.verdict is Verdict.GARDEN
    assert garden.get("Filter-Id") == "walled-garden"  # a generic NAS's address list
    rejected = build_reply(view(state), RadiusPolicy(reject_reasons=frozenset({key})))
    assert rejected.verdict is Verdict.REJECT
    assert rejected.message == key
    assert rejected.attributes == ()


def test_unknown_ended_and_pending_are_rejected() -> None:
    assert build_reply(None, RadiusPolicy()).message == "unknown subscriber"
    assert build_reply(view(ServiceState.ENDED), RadiusPolicy()).verdict is Verdict.REJECT
    assert build_reply(view(ServiceState.PENDING), RadiusPolicy()).verdict is Verdict.REJECT


def test_coa_or_disconnect() -> None:
    lists = RadiusPolicy(active_list="subscribers")
    pools = RadiusPolicy(garden_default=GardenRule(GardenKind.POOL, "p"))
    active = build_reply(view(vendor=Vendor.MIKROTIK), lists)
    garden = build_reply(view(ServiceState.SUSPENDED, "non_payer"), lists)
    assert active.get("Mikrotik-Address-List") == "subscribers"
    assert command_for(active, "service.active", lists) is Command.COA
    assert command_for(garden, "service.suspended", lists) is Command.COA
    assert command_for(garden, "service.suspended", pools) is Command.DISCONNECT
    # lifting a block with nothing to replace the garden's list: log in afresh
    assert (
        command_for(build_reply(view(), RadiusPolicy()), "service.active", RadiusPolicy())
        is Command.DISCONNECT
    )
    assert command_for(active, "service.fup_throttled", pools) is Command.COA
    ended = build_reply(view(ServiceState.ENDED), lists)
    assert command_for(ended, "service.ended", lists) is Command.DISCONNECT


def test_policy_parsers_name_the_setting() -> None:
    assert parse_garden_map("non_payer=address_list:unpaid, fup=pool:fup") == {
        "non_payer": "address_list:unpaid",
        "fup": "pool:fup",
    }
    with pytest.raises(ValidationError, match="radius_walled_garden"):
        parse_garden_map("nonpayer=address_list:x")
    with pytest.raises(ValidationError, match="address_list:NAME"):
        parse_garden_map("fup=vlan:7")
    with pytest.raises(ValidationError, match="use only"):
        parse_attribute_map("X-Rate={speed}")
    with pytest.raises(ValidationError, match="radius_reject_reasons"):
        parse_reason_list("paused, sleeping")


# --- accounting -------------------------------------------------------------------------------


def body(**attrs: object) -> dict[str, object]:
    return {k.replace("_", "-"): {"type": "string", "value": [str(v)]} for k, v in attrs.items()}


def test_parse_reads_gigawords_event_time_and_delay() -> None:
    record = parse_accounting(
        body(
            Acct_Status_Type="Interim-Update",
            Acct_Session_Id="s1",
            NAS_IP_Address="10.0.0.1",
            Acct_Input_Octets=10,
            Acct_Input_Gigawords=2,
            Acct_Output_Octets=7,
            Event_Timestamp="Nov 23 2026 11:00:00 UTC",
            Acct_Delay_Time=30,
        ),
        received_at=NOW,
    )
    assert record.input_bytes == 2 * GIGAWORD + 10
    assert record.output_bytes == 7
    assert record.event_at == datetime(2026, 11, 23, 10, 59, 30, tzinfo=UTC)
    assert record.session_key == "10.0.0.1/s1"


def test_a_nas_clock_ahead_never_dates_usage_into_the_future() -> None:
    record = parse_accounting(
        body(
            Acct_Status_Type="Start",
            Acct_Session_Id="s",
            NAS_IP_Address="1.1.1.1",
            Event_Timestamp=str(int((NOW + timedelta(hours=1)).timestamp())),
        ),
        received_at=NOW,
    )
    assert record.event_at == NOW


@pytest.mark.parametrize(
    ("attrs", "field"),
    [
        ({"Acct_Status_Type": "Start", "NAS_IP_Address": "1.1.1.1"}, "Acct-Session-Id"),
        (
            {
                "Acct_Status_Type": "Stop",
                "Acct_Session_Id": "s",
                "NAS_IP_Address": "1.1.1.1",
                "Acct_Input_Octets": -5,
            },
            "Acct-Input-Octets",
        ),
        (
            {
                "Acct_Status_Type": "Stop",
                "Acct_Session_Id": "s",
                "NAS_IP_Address": "1.1.1.1",
                "Acct_Output_Octets": "12kB",
            },
            "Acct-Output-Octets",
        ),
        (
            {"Acct_Status_Type": "Alive", "Acct_Session_Id": "s", "NAS_IP_Address": "1.1.1.1"},
            "Acct-Status-Type",
        ),
        ({"Acct_Status_Type": "Start", "Acct_Session_Id": "s"}, "NAS-IP-Address"),
        (
            {
                "Acct_Status_Type": "Start",
                "Acct_Session_Id": "s",
                "NAS_IP_Address": "1.1.1.1",
                "Event_Timestamp": "yesterday",
            },
            "Event-Timestamp",
        ),
    ],
)
def test_malformed_accounting_is_refused_naming_the_attribute(
    attrs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_accounting(body(**attrs), received_at=NOW)
    assert refused.value.field == field


def record(status: AcctStatus, at: datetime, inb: int = 0, outb: int = 0) -> AcctRecord:
    return AcctRecord(status, "1.1.1.1", at, "s1", input_bytes=inb, output_bytes=outb)


def test_start_interim_stop_then_late_interim_never_reopens() -> None:
    start = apply_accounting(None, record(AcctStatus.START, NOW))
    assert start.state is not None
    assert start.state.open
    interim = apply_accounting(
        start.state, record(AcctStatus.INTERIM, NOW + timedelta(minutes=5), 100, 900)
    )
    assert interim.usage_bytes == 1000
    assert interim.state is not None
    stop = apply_accounting(
        interim.state, record(AcctStatus.STOP, NOW + timedelta(minutes=9), 150, 950)
    )
    assert stop.usage_bytes == 100
    assert stop.state is not None
    assert stop.state.stopped_at == NOW + timedelta(minutes=9)
    late = apply_accounting(
        stop.state, record(AcctStatus.INTERIM, NOW + timedelta(minutes=7), 400, 4000)
    )
    assert late.state is None
    assert late.usage_bytes == 0
    assert apply_accounting(stop.state, record(AcctStatus.START, NOW)).state is None


counters = st.lists(
    st.tuples(
        st.sampled_from([AcctStatus.INTERIM, AcctStatus.STOP, AcctStatus.START]),
        st.integers(0, 10**12),
        st.integers(0, 10**12),
        st.integers(0, 3600),
    ),
    min_size=1,
    max_size=12,
)


@given(counters, st.randoms())
def test_usage_counts_each_byte_once_whatever_the_order_or_duplicates(
    packets: list[tuple[AcctStatus, int, int, int]], rnd: object
) -> None:
    """Replaying any packet again adds nothing, and the usage never exceeds the largest
    counters seen (a byte is never counted twice)."""
    state: SessionState | None = None
    total = 0
    for status, inb, outb, offset in packets:
        packet = record(status, NOW + timedelta(seconds=offset), inb, outb)
        decision = apply_accounting(state, packet)
        total += decision.usage_bytes
        state = decision.state or state
        again = apply_accounting(state, packet)
        assert again.usage_bytes == 0
        state = again.state or state
    assert state is not None
    assert total == state.input_bytes + state.output_bytes
    assert state.input_bytes <= max(p[1] for p in packets)


# --- FUP ---------------------------------------------------------------------------------------

TIERS = (
    FupTier(1, 100, FupAction.THROTTLE, Speed(5000, 1000)),
    FupTier(2, 200, FupAction.THROTTLE, Speed(1000, 500)),
    FupTier(3, 300, FupAction.SUSPEND),
)


def test_tiers_are_reached_at_their_limit_and_only_go_up() -> None:
    assert reached_tier(TIERS, 99) is None
    assert reached_tier(TIERS, 100) == TIERS[0]
    step = decide_fup(TIERS, 250, applied_tier=1)
    assert step is not None
    assert step.tier.tier == 2
    assert not step.suspends
    assert decide_fup(TIERS, 250, applied_tier=2) is None
    final = decide_fup(TIERS, 10**9, applied_tier=0)
    assert final is not None
    assert final.suspends
    assert throttle_for(TIERS, 2) == Speed(1000, 500)
    assert throttle_for(TIERS, 0) is None
