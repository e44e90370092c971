"""The rlm_rest endpoints on both databases: authorize from the committed state, accounting
(idempotent, late Interim, Accounting-On, malformed refused with nothing changed), FUP usage
from accounting, the address map, and the endpoints' token and source checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from radius_support import (
    GB,
    TOKEN,
    RestClient,
    World,
    build_world,
    force_state,
    rlm,
    set_setting,
    values,
)
from sqlalchemy import func, select, update

from ispbill.adapters.db import event_log
from ispbill.adapters.db.models import (
    Event,
    OutboxCommand,
    RadiusAnswer,
    RadiusSession,
    Service,
    UsageRecord,
)
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.accounting import parse_accounting
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import SuspensionReason
from ispbill.domain.radius import RadiusPolicy
from ispbill.settings import Settings
from ispbill.use_cases.network import access_changes, usage
from ispbill.use_cases.network import radius_requests as radius
from scenarios.helpers import check_books


@pytest.fixture
def world(database_url: str, clock: FixedClock) -> Iterator[World]:
    settings = Settings(database_url=database_url, radius_token=TOKEN, radius_policy_ttl_seconds=0)
    app = bootstrap(settings=settings, clock=clock)
    try:
        yield build_world(app, clock.now())
        check_books(app)
    finally:
        app.close()


def rows(app: App, model: type) -> int:
    with app.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_active_is_accepted_with_rate_and_password_for_freeradius(world: World) -> None:
    answer = RestClient(world.app).authorize("alice")
    assert answer.status_code == 200
    got = values(answer)
    assert got["reply:Mikrotik-Rate-Limit"] == "10M/50M"
    assert got["control:Cleartext-Password"] == "s3cret%{x}"
    # every value goes out unexpanded (a password with %{...} must not change)
    assert all(item["do_xlat"] is False for item in answer.json().values())


def test_suspended_goes_to_the_walled_garden_per_reason(world: World) -> None:
    now = world.app.clock.now()
    set_setting(
        world.app, now, "radius_walled_garden", "non_payer=address_list:unpaid, fup=pool:fup-pool"
    )
    set_setting(world.app, now, "radius_walled_garden_rate", "1M/1M")
    client = RestClient(world.app)
    for reason in [r.value for r in SuspensionReason]:
        force_state(world.app, world.service, "suspended", reason)
        answer = client.authorize("alice")
        assert answer.status_code == 200
        got = values(answer)
        assert got["reply:Reply-Message"] == f"suspended: {reason}"
        assert got["reply:Mikrotik-Rate-Limit"] == "1M/1M"
        if reason == "fup":
            assert got["reply:Framed-Pool"] == "fup-pool"
        else:
            expected = "unpaid" if reason == "non_payer" else "walled-garden"
            assert got["reply:Mikrotik-Address-List"] == expected


def test_reject_instead_of_garden_when_the_operator_says_so(world: World) -> None:
    set_setting(
        world.app, world.app.clock.now(), "radius_reject_reasons", "deactivated, unregistered"
    )
    force_state(world.app, world.service, "deactivated")
    answer = RestClient(world.app).authorize("alice")
    assert answer.status_code == 401
    assert values(answer) == {"reply:Reply-Message": "deactivated"}
    force_state(world.app, world.service, "paused")
    assert (
        values(RestClient(world.app).authorize("alice"))["reply:Mikrotik-Address-List"]
        == "walled-garden"
    )


def test_unknown_ended_and_foreign_nas_are_rejected(world: World) -> None:
    client = RestClient(world.app)
    assert values(client.authorize("mallory")) == {"reply:Reply-Message": "unknown subscriber"}
    force_state(world.app, world.service, "ended")
    ended = client.authorize("alice")
    assert ended.status_code == 401
    assert values(ended) == {"reply:Reply-Message": "service ended"}


def test_the_endpoints_need_the_token_and_an_allowed_source(world: World) -> None:
    assert (
        RestClient(world.app, token="wrong-token-000000000").authorize("alice").status_code == 403
    )
    assert RestClient(world.app, client=("192.0.2.7", 5000)).authorize("alice").status_code == 403
    off = bootstrap(
        settings=Settings(database_url=world.app.settings.database_url), clock=world.app.clock
    )
    try:
        assert RestClient(off).authorize("alice").status_code == 503
    finally:
        off.close()


@pytest.mark.parametrize("path", ["/radius/authorize", "/radius/accounting"])
def test_a_nul_a_deep_nesting_or_a_huge_body_is_refused_not_a_server_error(
    world: World, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """rlm_rest reads 400 (and 413) as "fail": a reject, never a 500 from the database or the
    JSON parser; nothing is looked up or recorded."""
    before = (rows(world.app, RadiusSession), rows(world.app, Event))
    client = RestClient(world.app)
    packet = rlm(
        User_Name="ali\x00ce",
        NAS_IP_Address="127.0.0.1",
        Acct_Status_Type="Start",
        Acct_Session_Id="N1",
    )
    nul = client.post(path, packet)
    deep = client.post_raw(
        path,
        content=b'{"User-Name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        headers={"content-type": "application/json"},
    )
    huge = client.post_raw(path, json=rlm(User_Name="a" * 70_000))
    assert [a.status_code for a in (nul, deep, huge)] == [400, 400, 413]
    assert {a.headers["content-type"] for a in (nul, deep, huge)} == {"application/problem+json"}
    assert nul.json()["detail"] == "User-Name.value.0: must not contain NUL characters"
    assert deep.json()["detail"] == "body: must not nest deeper than 32 levels"
    assert "refused" in caplog.text
    assert (rows(world.app, RadiusSession), rows(world.app, Event)) == before


def test_the_radius_use_cases_refuse_a_nul_themselves(world: World) -> None:
    """Behind the HTTP guard, the use cases refuse a NUL in an attribute by name."""
    now = world.app.clock.now()
    with pytest.raises(ValidationError, match="User-Name: must not contain NUL"):
        parse_accounting(
            rlm(
                User_Name="a\x00",
                NAS_IP_Address="127.0.0.1",
                Acct_Status_Type="Start",
                Acct_Session_Id="N2",
            ),
            received_at=now,
        )
    with world.app.uow() as uow, pytest.raises(ValidationError, match="User-Name: must not"):
        radius.authorize(uow, attributes=rlm(User_Name="a\x00"), policy=RadiusPolicy(), now=now)


def test_accounting_is_idempotent_and_a_late_interim_never_reopens(world: World) -> None:
    client = RestClient(world.app)
    start = {
        "Acct_Status_Type": "Start",
        "User_Name": "alice",
        "Acct_Session_Id": "A1",
        "Framed_IP_Address": "10.9.0.7",
    }
    interim = {
        **start,
        "Acct_Status_Type": "Interim-Update",
        "Acct_Input_Octets": 100,
        "Acct_Output_Octets": 400,
    }
    stop = {
        **start,
        "Acct_Status_Type": "Stop",
        "Acct_Input_Octets": 300,
        "Acct_Output_Octets": 900,
    }
    for packet in (
        start,
        start,
        interim,
        interim,
        stop,
        stop,
        {**interim, "Acct_Input_Octets": 5000},
    ):
        assert client.accounting(**packet).status_code == 204
    with world.app.uow() as uow:
        [session] = uow.session.scalars(select(RadiusSession)).all()
        [usage] = uow.session.scalars(select(UsageRecord)).all()
    assert session.stopped_at is not None
    assert (session.input_bytes, session.output_bytes) == (300, 900)
    assert usage.bytes_total == 1200


def test_accounting_on_closes_the_nas_sessions_and_the_address_map_follows(world: World) -> None:
    client = RestClient(world.app)
    now = world.app.clock.now()
    client.accounting(
        Acct_Status_Type="Start",
        User_Name="alice",
        Acct_Session_Id="B1",
        Framed_IP_Address="10.9.0.8",
    )
    with world.app.uow() as uow:
        assert radius.service_for_address(uow, "10.9.0.8", now) == world.service
        assert radius.service_for_address(uow, "10.9.0.9", now) is None
    assert client.accounting(Acct_Status_Type="Accounting-On").status_code == 204
    with world.app.uow() as uow:
        assert radius.service_for_address(uow, "10.9.0.8", now) is None
        [session] = uow.session.scalars(select(RadiusSession)).all()
    assert session.terminate_cause == "NAS-Reboot"


@pytest.mark.parametrize(
    "packet",
    [
        {"Acct_Status_Type": "Interim-Update", "User_Name": "alice", "Acct_Input_Octets": 5},
        {
            "Acct_Status_Type": "Interim-Update",
            "User_Name": "alice",
            "Acct_Session_Id": "C1",
            "Acct_Input_Octets": -5,
        },
        {
            "Acct_Status_Type": "Stop",
            "User_Name": "alice",
            "Acct_Session_Id": "C1",
            "Acct_Output_Octets": "lots",
        },
    ],
)
def test_malformed_accounting_is_refused_and_changes_nothing(
    world: World, packet: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    before = (rows(world.app, RadiusSession), rows(world.app, UsageRecord), rows(world.app, Event))
    answer = RestClient(world.app).accounting(**packet)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "refused" in caplog.text
    assert (
        rows(world.app, RadiusSession),
        rows(world.app, UsageRecord),
        rows(world.app, Event),
    ) == before


def test_accounting_moves_fup_usage_until_the_tier_actions_fire(
    world: World, clock: FixedClock
) -> None:
    client = RestClient(world.app)
    base = {"User_Name": "alice", "Acct_Session_Id": "D1"}
    client.accounting(Acct_Status_Type="Start", **base)
    client.accounting(Acct_Status_Type="Interim-Update", Acct_Output_Octets=GB // 2, **base)
    assert values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "10M/50M"
    client.accounting(Acct_Status_Type="Interim-Update", Acct_Output_Octets=GB + 1, **base)
    assert values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "1M/5M"  # tier 1
    client.accounting(
        Acct_Status_Type="Interim-Update", Acct_Output_Gigawords=1, Acct_Output_Octets=0, **base
    )
    assert (
        values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "1M/5M"
    )  # 4.29 GB: suspend
    suspended = values(client.authorize("alice"))
    assert suspended["reply:Reply-Message"] == "suspended: fup"
    with world.app.uow() as uow:
        kinds = [
            (e.kind, e.reason)
            for e in uow.session.scalars(
                select(Event).where(Event.kind.like("service.%")).order_by(Event.id)
            )
        ]
        outbox = [
            c.event_kind
            for c in uow.session.scalars(select(OutboxCommand).order_by(OutboxCommand.id))
        ]
    assert kinds[-2:] == [("service.fup_throttled", "FUP tier 1"), ("service.suspended", "fup")]
    assert outbox[-2:] == ["service.fup_throttled", "service.suspended"]


def test_the_next_period_resets_fup(world: World, clock: FixedClock) -> None:
    client = RestClient(world.app)
    base = {"User_Name": "alice", "Acct_Session_Id": "E1"}
    client.accounting(Acct_Status_Type="Interim-Update", Acct_Output_Octets=3 * GB, **base)
    assert values(client.authorize("alice"))["reply:Reply-Message"] == "suspended: fup"
    clock.set(clock.now() + timedelta(days=32))
    with world.app.uow() as uow:
        assert usage.reset_finished_periods(uow, now=clock.now(), actor="test") == 1
    with world.app.uow() as uow:
        assert usage.reset_finished_periods(uow, now=clock.now(), actor="test") == 0
    assert values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "10M/50M"
    with world.app.uow() as uow:
        last = uow.session.scalars(select(Event).order_by(Event.id.desc())).first()
    assert last is not None
    assert (last.kind, last.reason) == ("service.active", "fup_reset")


def test_the_slower_of_the_collection_and_fup_throttles_applies(world: World) -> None:
    with world.app.uow() as uow:
        uow.session.execute(
            update(Service)
            .where(Service.id == world.service)
            .values(throttle_down_kbps=2000, throttle_up_kbps=2000)
        )
        uow.commit()
    client = RestClient(world.app)
    assert values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "2M/2M"
    client.accounting(
        Acct_Status_Type="Interim-Update",
        User_Name="alice",
        Acct_Session_Id="F1",
        Acct_Output_Octets=GB + 1,
    )  # FUP tier 1: 5M down, 1M up
    assert values(client.authorize("alice"))["reply:Mikrotik-Rate-Limit"] == "1M/2M"


def test_the_walled_garden_page_finds_the_subscriber_by_address(
    database_url: str, clock: FixedClock
) -> None:
    settings = Settings(
        database_url=database_url, radius_token=TOKEN, garden_secret="garden-secret-0123456789"
    )
    app = bootstrap(settings=settings, clock=clock)
    try:
        world = build_world(app, clock.now())
        force_state(app, world.service, "suspended", "non_payer")
        RestClient(app).accounting(
            Acct_Status_Type="Start",
            User_Name="alice",
            Acct_Session_Id="G1",
            Framed_IP_Address="100.64.7.7",
        )
        subscriber = RestClient(app, client=("100.64.7.7", 50000)).transport
        stranger = RestClient(app, client=("100.64.7.8", 50000)).transport

        async def get(transport: httpx.ASGITransport) -> httpx.Response:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return await c.get("/garden")

        page = asyncio.run(get(subscriber))
        assert page.status_code == 200
        assert "Alice" in page.text
        assert asyncio.run(get(stranger)).status_code == 404
        check_books(app)
    finally:
        app.close()


def test_precomputed_answers_equal_what_authorize_says(world: World) -> None:
    """The rlm_sql fast path can never disagree with rlm_rest: after every change, the stored
    answer lines are the authorize reply."""
    client = RestClient(world.app)
    now = world.app.clock.now()
    set_setting(world.app, now, "radius_reject_reasons", "paused")
    cases = [("active", None), ("suspended", "fup"), ("deactivated", None), ("paused", None)]
    for state, reason in cases:
        force_state(world.app, world.service, state, reason)
        answer = client.authorize("alice")
        with world.app.uow() as uow:
            lines = uow.session.execute(
                select(RadiusAnswer.kind, RadiusAnswer.attribute, RadiusAnswer.value)
                .where(RadiusAnswer.username == "alice", RadiusAnswer.vendor == "mikrotik")
                .order_by(RadiusAnswer.id)
            ).all()
        stored = {f"{'control' if k == 'check' else 'reply'}:{a}": v for k, a, v in lines}
        if answer.status_code == 401:
            assert stored == {"control:Auth-Type": "Reject", **values(answer)}
        else:
            assert stored == values(answer), (state, reason)
    client.accounting(
        Acct_Status_Type="Interim-Update",
        User_Name="alice",
        Acct_Session_Id="H1",
        Acct_Output_Octets=GB + 1,
    )
    force_state(world.app, world.service, "active")
    with world.app.uow() as uow:
        rate = uow.session.scalar(
            select(RadiusAnswer.value).where(
                RadiusAnswer.username == "alice",
                RadiusAnswer.vendor == "mikrotik",
                RadiusAnswer.attribute == "Mikrotik-Rate-Limit",
            )
        )
    assert rate == "1M/5M"  # the FUP throttle reached the stored answer too


def test_an_access_change_reaches_the_outbox_and_the_answer_only_through_its_explicit_step(
    world: World,
) -> None:
    """``event_log.record`` only records: the CoA command and the fresh rlm_sql answer come from
    the use case's own step (``access_changes.enqueue``), in the same commit."""
    now = world.app.clock.now()

    def rate() -> str | None:
        with world.app.uow() as uow:
            return uow.session.scalar(
                select(RadiusAnswer.value).where(
                    RadiusAnswer.username == "alice",
                    RadiusAnswer.vendor == "mikrotik",
                    RadiusAnswer.attribute == "Mikrotik-Rate-Limit",
                )
            )

    before_commands, before_rate = rows(world.app, OutboxCommand), rate()
    with world.app.uow() as uow:
        uow.begin_write()
        service = uow.session.get(Service, world.service)
        assert service is not None
        service.throttle_down_kbps, service.throttle_up_kbps = 1000, 500
        event = event_log.record(
            uow,
            now=now,
            actor="test",
            kind="service.throttled",
            subject_type="service",
            subject_id=world.service,
            customer_id=world.customer,
        )
        uow.commit()
    assert rows(world.app, OutboxCommand) == before_commands  # recording alone queues nothing
    assert rate() == before_rate
    with world.app.uow() as uow:
        uow.begin_write()
        event = uow.session.get(Event, event.id)
        assert event is not None
        access_changes.enqueue(uow, event)
        uow.commit()
    assert rows(world.app, OutboxCommand) == before_commands + 1
    assert rate() == "500k/1M"  # rebuilt before that commit, from the committed throttle


def test_a_unit_of_work_without_the_refresh_step_refuses_to_commit_stale_answers(
    world: World,
) -> None:
    """The answers are rebuilt by the pre-commit step bootstrap gives every unit of work; one
    built without it cannot commit a change that made answers stale, so rlm_sql never serves an
    answer the committed state contradicts."""
    with UnitOfWork(world.app.session_factory) as uow:
        uow.begin_write()
        uow.session.execute(
            update(Service).where(Service.id == world.service).values(state="suspended")
        )
        uow.mark_answers_stale([world.service], world.app.clock.now())
        with pytest.raises(RuntimeError, match="no pre-commit step rebuilt them"):
            uow.commit()
    with world.app.uow() as uow:
        assert uow.session.scalar(select(Service.state).where(Service.id == world.service)) == (
            "active"
        )
    with world.app.uow() as uow:
        uow.begin_write()
        created = event_log.record(
            uow,
            now=world.app.clock.now(),
            actor="test",
            kind="service.created",
            subject_type="service",
            subject_id=world.service,
        )
        with pytest.raises(ValueError, match="does not change access"):
            access_changes.enqueue(uow, created)
