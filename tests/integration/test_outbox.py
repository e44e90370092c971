"""The enforcement outbox on both databases: commands are written with their events (and
only if those commit), the worker sends CoA / Disconnect with pyrad to a NAS stand-in on UDP
loopback, retries NAKs and timeouts with back-off, survives restarts, and a payment that lifts
a suspension reaches the NAS within a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pyrad import packet
from radius_support import GB, TOKEN, NasStandIn, World, build_world, set_setting
from sqlalchemy import select

from ispbill.adapters.db.models import OutboxCommand
from ispbill.adapters.radius.coa import PyradSender
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.accounting import AcctRecord, AcctStatus
from ispbill.entrypoints.jobs import coa_sender
from ispbill.settings import Settings
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.network import enforcement, usage
from ispbill.use_cases.network import radius_requests as radius
from ispbill.use_cases.network.enforcement import RetryPolicy
from scenarios.helpers import check_books, pay

FAST = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0, max_attempts=4, lease_s=30.0)


@pytest.fixture
def nas() -> Iterator[NasStandIn]:
    stand_in = NasStandIn()
    try:
        yield stand_in
    finally:
        stand_in.close()


def make_app(database_url: str, clock: FixedClock) -> App:
    return bootstrap(settings=Settings(database_url=database_url, radius_token=TOKEN), clock=clock)


@pytest.fixture
def world(database_url: str, clock: FixedClock, nas: NasStandIn) -> Iterator[World]:
    app = make_app(database_url, clock)
    try:
        yield build_world(app, clock.now(), nas_port=nas.port)
        check_books(app)
    finally:
        app.close()


def start_session(world: World, session_id: str = "S1", ip: str = "10.20.0.2") -> None:
    record = AcctRecord(
        AcctStatus.START, "127.0.0.1", world.app.clock.now(), session_id, "alice", framed_ip=ip
    )
    with world.app.uow() as uow:
        radius.record_accounting(uow, record=record, now=world.app.clock.now())


def use(world: World, amount: int) -> None:
    with world.app.uow() as uow:
        uow.begin_write()
        usage.add_usage(
            uow,
            service_id=world.service,
            used_bytes=amount,
            at=world.app.clock.now(),
            now=world.app.clock.now(),
            actor="test",
        )
        uow.commit()


def commands(app: App) -> list[OutboxCommand]:
    with app.uow() as uow:
        return list(uow.session.scalars(select(OutboxCommand).order_by(OutboxCommand.id)))


def deliver(world: World, timeout_s: float = 0.3) -> int:
    return enforcement.process_due(
        world.app.uow_factory,
        PyradSender(timeout_s=timeout_s),
        now=world.app.clock.now(),
        retry=FAST,
    )


def test_a_command_is_written_only_if_its_event_commits(world: World) -> None:
    before = len(commands(world.app))
    with world.app.uow() as uow:
        uow.begin_write()
        usage.add_usage(
            uow,
            service_id=world.service,
            used_bytes=3 * GB,
            at=world.app.clock.now(),
            now=world.app.clock.now(),
            actor="test",
        )
        # no commit: the suspension, its event and its command roll back together
    assert len(commands(world.app)) == before
    use(world, 3 * GB)
    assert [c.event_kind for c in commands(world.app)][before:] == ["service.suspended"]


def test_the_ticks_bulk_writer_adds_commands_for_its_transitions(
    database_url: str, clock: FixedClock, nas: NasStandIn
) -> None:
    app = make_app(database_url, clock)
    try:
        world = build_world(app, clock.now(), funds="30.00", nas_port=nas.port)
        assert [c.event_kind for c in commands(app)] == ["service.active"]
        tick(app.uow, now=clock.now() + timedelta(days=40))  # next period unpaid: deactivated
        assert [c.event_kind for c in commands(app)] == ["service.active", "service.deactivated"]
        assert commands(app)[-1].service_id == world.service
        check_books(app)
    finally:
        app.close()


def test_coa_to_every_open_session_then_done(world: World, nas: NasStandIn) -> None:
    start_session(world)
    deliver(world)  # the activation command of the set-up
    nas.received.clear()
    use(world, 3 * GB)  # FUP suspend tier
    assert deliver(world) == 1
    [coa] = nas.wait_for(1)
    assert coa.code == packet.CoARequest
    assert coa.attributes["Acct-Session-Id"] == ["S1"]
    assert coa.attributes["User-Name"] == ["alice"]
    assert coa.attributes["Mikrotik-Address-List"] == ["walled-garden"]
    last = commands(world.app)[-1]
    assert last.status == "done"
    assert last.results["127.0.0.1/S1"]["answer"] == "ack"


def test_a_nak_is_retried_as_a_disconnect(world: World, nas: NasStandIn, clock: FixedClock) -> None:
    start_session(world)
    deliver(world)
    nas.received.clear()
    nas.script.extend(["nak"])
    use(world, 3 * GB)
    deliver(world)
    assert commands(world.app)[-1].status == "pending"
    assert deliver(world) == 0  # back-off: not due yet
    clock.advance(timedelta(seconds=1))
    deliver(world)
    received = nas.wait_for(2)
    assert [r.code for r in received] == [packet.CoARequest, packet.DisconnectRequest]
    last = commands(world.app)[-1]
    assert last.status == "done"
    attempts = last.results["127.0.0.1/S1"]["attempts"]
    assert [(a["packet"], a["answer"]) for a in attempts] == [("coa", "nak"), ("disconnect", "ack")]


def test_a_timeout_is_retried_with_back_off_until_the_attempts_run_out(
    world: World, nas: NasStandIn, clock: FixedClock
) -> None:
    start_session(world)
    deliver(world)
    nas.script.extend(["drop", "drop"])
    use(world, 3 * GB)
    deliver(world, timeout_s=0.2)
    clock.advance(timedelta(seconds=1))
    deliver(world, timeout_s=0.2)  # second drop; next try after 2 s
    clock.advance(timedelta(seconds=1))
    assert deliver(world) == 0
    clock.advance(timedelta(seconds=1))
    deliver(world)
    assert commands(world.app)[-1].status == "done"
    # with nothing answering at all, the command fails after max_attempts and says why
    nas.script.extend(["drop"] * 10)
    use(world, 0)
    with world.app.uow() as uow:
        usage.reset_finished_periods(uow, now=clock.now() + timedelta(days=40), actor="test")
    for _ in range(FAST.max_attempts):
        deliver(world, timeout_s=0.1)
        clock.advance(timedelta(seconds=FAST.max_delay_s))
    failed = commands(world.app)[-1]
    assert failed.status == "dead"
    assert "after 4 attempts" in (failed.last_error or "")


def test_nothing_is_lost_across_restarts(
    world: World, nas: NasStandIn, database_url: str, clock: FixedClock
) -> None:
    start_session(world)
    deliver(world)
    nas.received.clear()
    use(world, 3 * GB)  # committed; ispbill "stops" before the worker sends
    restarted = make_app(database_url, clock)
    try:
        # a worker that claimed the command and died mid-send leaves a lease that expires
        enforcement.claim(restarted.uow_factory, now=clock.now(), retry=FAST, limit=10)
        assert (
            enforcement.process_due(
                restarted.uow_factory, PyradSender(), now=clock.now(), retry=FAST
            )
            == 0
        )
        clock.advance(timedelta(seconds=FAST.lease_s))
        sent = coa_sender.run_worker(
            restarted.uow_factory,
            PyradSender(timeout_s=0.5),
            clock=clock.now,
            database_url=database_url,
            once=True,
            retry=FAST,
        )
        assert sent == 1
        assert [r.code for r in nas.wait_for(1)] == [packet.CoARequest]
        assert commands(restarted)[-1].status == "done"
    finally:
        restarted.close()


def test_a_payment_that_lifts_a_suspension_reaches_the_nas_within_a_second(
    database_url: str, clock: FixedClock, nas: NasStandIn
) -> None:
    app = make_app(database_url, clock)
    stop = threading.Event()
    try:
        world = build_world(
            app, clock.now(), balance_control="postpaid", credit_limit="10.00", nas_port=nas.port
        )
        set_setting(app, clock.now(), "radius_active_address_list", "subscribers")
        start_session(world)
        worker = threading.Thread(
            target=coa_sender.run_worker,
            kwargs={
                "uow_factory": app.uow_factory,
                "sender": PyradSender(timeout_s=0.5),
                "clock": clock.now,
                "database_url": database_url,
                "stop": stop,
                "poll_s": 0.2,
                "retry": FAST,
            },
            daemon=True,
        )
        worker.start()
        deadline = time.monotonic() + 5
        while any(c.status == "pending" for c in commands(app)) and time.monotonic() < deadline:
            time.sleep(0.05)
        # the credit-limit suspension of the set-up reached the NAS already
        assert nas.received[-1].attributes["Mikrotik-Address-List"] == ["walled-garden"]
        seen = len(nas.received)
        time.sleep(0.3)  # the worker is idle, waiting for work
        paid_at = time.monotonic()
        pay(app, clock.now(), world.customer, "30.00", "restore-1")
        received = nas.wait_for(seen + 1, timeout_s=3)
        assert len(received) == seen + 1
        lifted = received[-1]
        assert lifted.code == packet.CoARequest
        assert lifted.attributes["Mikrotik-Address-List"] == ["subscribers"]
        assert lifted.attributes["Mikrotik-Rate-Limit"] == ["10M/50M"]
        assert lifted.at - paid_at < 1.0
        check_books(app)
    finally:
        stop.set()
        time.sleep(0.6)
        app.close()
