"""Delivering the CoA outbox one command at a time (a job per command, issue 15), on both
databases: ``deliver_command`` delivers once however often it runs, no more than the per-NAS
limit of commands are in flight to one NAS, a command whose attempts run out is a dead letter
(with its event) that an operator retries (with another)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from api_support import Api, api_app, make_world
from radius_support import TOKEN, World, build_world
from sqlalchemy import select
from web_support import PASSWORD, Browser, web_app

from ispbill.adapters.db.models import Event, OutboxCommand
from ispbill.adapters.db.outbox import enqueue
from ispbill.adapters.radius.coa import Answer, NasTarget, SendResult
from ispbill.bootstrap import App, bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.accounting import AcctRecord, AcctStatus
from ispbill.domain.errors import Conflict, ValidationError
from ispbill.domain.radius import Command
from ispbill.settings import Settings
from ispbill.use_cases.admin.web_auth import add_staff
from ispbill.use_cases.network import enforcement
from ispbill.use_cases.network import radius_requests as radius
from ispbill.use_cases.network.enforcement import RetryPolicy
from scenarios.helpers import check_books

FAST = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0, max_attempts=3, lease_s=30.0)


class ScriptedSender:
    """A NAS stand-in without sockets: answers ``answer``; with ``gate`` set, each send waits
    for it (a slow NAS), and ``sending`` tells when one is in flight."""

    def __init__(self, answer: Answer = Answer.ACK) -> None:
        self.answer = answer
        self.sent: list[tuple[str, Command]] = []
        self.gate: threading.Event | None = None
        self.sending = threading.Event()

    def send(
        self, target: NasTarget, command: Command, attributes: Sequence[tuple[str, str]]
    ) -> SendResult:
        self.sending.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        self.sent.append((target.address, command))
        return SendResult(self.answer)


@pytest.fixture
def world(database_url: str, clock: FixedClock) -> Iterator[World]:
    app = bootstrap(settings=Settings(database_url=database_url, radius_token=TOKEN), clock=clock)
    try:
        built = build_world(app, clock.now())
        start_session(built)
        settle(built)  # the activation command of the set-up
        yield built
        check_books(app)
    finally:
        app.close()


def start_session(world: World) -> None:
    now = world.app.clock.now()
    record = AcctRecord(AcctStatus.START, "127.0.0.1", now, "S1", "alice", framed_ip="10.20.0.2")
    with world.app.uow() as uow:
        radius.record_accounting(uow, record=record, now=now)


def settle(world: World) -> None:
    enforcement.process_due(world.app.uow_factory, ScriptedSender(), now=world.app.clock.now())


def new_command(world: World) -> int:
    with world.app.uow() as uow:
        uow.begin_write()
        enqueue(
            uow.session,
            service_id=world.service,
            kind="service.plan_changed",
            reason="test",
            now=world.app.clock.now(),
        )
        uow.commit()
        return int(
            uow.session.scalars(select(OutboxCommand.id).order_by(OutboxCommand.id.desc())).first()
            or 0
        )


def command(app: App, command_id: int) -> OutboxCommand:
    with app.uow() as uow:
        row = uow.session.get(OutboxCommand, command_id)
        assert row is not None
        return row


def events_of(app: App, kind: str) -> list[Event]:
    with app.uow() as uow:
        return list(uow.session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_deliver_command_delivers_once_however_often_it_runs(
    world: World, clock: FixedClock
) -> None:
    sender = ScriptedSender()
    one = new_command(world)
    delivered = enforcement.deliver_command(world.app.uow_factory, sender, one, clock.now(), FAST)
    assert (delivered.status, delivered.next_attempt_at) == ("done", None)
    again = enforcement.deliver_command(world.app.uow_factory, sender, one, clock.now(), FAST)
    assert again.status == "done"
    assert sender.sent == [("127.0.0.1", Command.COA)]
    missing = enforcement.deliver_command(world.app.uow_factory, sender, 10**6, clock.now(), FAST)
    assert missing.status == enforcement.MISSING

    refused = ScriptedSender(Answer.NAK)  # a CoA-NAK: retried as a Disconnect after 1 s
    two = new_command(world)
    first = enforcement.deliver_command(world.app.uow_factory, refused, two, clock.now(), FAST)
    assert first.status == "pending"
    assert first.next_attempt_at == clock.now() + timedelta(seconds=1)
    early = enforcement.deliver_command(world.app.uow_factory, refused, two, clock.now(), FAST)
    assert (early.status, early.next_attempt_at) == (enforcement.NOT_DUE, first.next_attempt_at)
    assert len(refused.sent) == 1


def test_no_more_than_the_per_nas_limit_is_in_flight(world: World, clock: FixedClock) -> None:
    one_at_a_time = RetryPolicy(max_attempts=3, per_nas_limit=1, busy_delay_s=2.0)
    slow = ScriptedSender()
    slow.gate = threading.Event()
    first, second = new_command(world), new_command(world)
    results: list[enforcement.Delivery] = []
    flight = threading.Thread(
        target=lambda: results.append(
            enforcement.deliver_command(
                world.app.uow_factory, slow, first, clock.now(), one_at_a_time
            )
        )
    )
    flight.start()
    try:
        assert slow.sending.wait(timeout=10)
        fast = ScriptedSender()
        busy = enforcement.deliver_command(
            world.app.uow_factory, fast, second, clock.now(), one_at_a_time
        )
        assert busy.status == enforcement.BUSY
        assert busy.next_attempt_at == clock.now() + timedelta(seconds=2)
        assert fast.sent == []
        assert command(world.app, second).attempts == 0  # nothing was sent: no attempt spent
    finally:
        slow.gate.set()
        flight.join(timeout=30)
    assert [r.status for r in results] == ["done"]
    clock.advance(timedelta(seconds=2))
    later = enforcement.deliver_command(
        world.app.uow_factory, ScriptedSender(), second, clock.now(), one_at_a_time
    )
    assert later.status == "done"
    # two slots: both go at once
    two_at_a_time = RetryPolicy(per_nas_limit=2)
    slow.gate = threading.Event()
    slow.sending.clear()
    third, fourth = new_command(world), new_command(world)
    results.clear()
    flight = threading.Thread(
        target=lambda: results.append(
            enforcement.deliver_command(
                world.app.uow_factory, slow, third, clock.now(), two_at_a_time
            )
        )
    )
    flight.start()
    try:
        assert slow.sending.wait(timeout=10)
        side = enforcement.deliver_command(
            world.app.uow_factory, ScriptedSender(), fourth, clock.now(), two_at_a_time
        )
        assert side.status == "done"
    finally:
        slow.gate.set()
        flight.join(timeout=30)
    assert [r.status for r in results] == ["done"]


def test_a_dead_letter_has_its_event_and_an_operator_retries_it(
    world: World, clock: FixedClock
) -> None:
    silent = ScriptedSender(Answer.TIMEOUT)
    dead = new_command(world)
    delays = []
    for _ in range(FAST.max_attempts):
        result = enforcement.deliver_command(world.app.uow_factory, silent, dead, clock.now(), FAST)
        if result.next_attempt_at is not None:
            delays.append((result.next_attempt_at - clock.now()).total_seconds())
        clock.advance(timedelta(seconds=FAST.max_delay_s))
    assert delays == [1.0, 2.0]  # doubling, capped at max_delay_s
    row = command(world.app, dead)
    assert row.status == "dead"
    assert "after 3 attempts" in (row.last_error or "")
    [lettered] = events_of(world.app, "outbox.dead_lettered")
    assert (lettered.subject_type, lettered.subject_id) == ("outbox_command", dead)
    assert lettered.customer_id == world.customer
    assert lettered.figures["attempts"] == 3
    again = enforcement.deliver_command(world.app.uow_factory, silent, dead, clock.now(), FAST)
    assert again.status == "dead"  # a dead letter is not sent until retried
    assert len(silent.sent) == 3

    with world.app.uow() as uow, pytest.raises(ValidationError, match="reason"):
        enforcement.retry_command(uow, command_id=dead, reason=" ", now=clock.now(), actor="op")
    with world.app.uow() as uow:
        enforcement.retry_command(
            uow, command_id=dead, reason="NAS rebooted", now=clock.now(), actor="admin:op"
        )
    [retried] = events_of(world.app, "outbox.retried")
    assert (retried.actor, retried.reason, retried.subject_id) == ("admin:op", "NAS rebooted", dead)
    assert "after 3 attempts" in retried.figures["error"]
    row = command(world.app, dead)
    assert (row.status, row.attempts, row.completed_at) == ("pending", 0, None)
    with world.app.uow() as uow, pytest.raises(Conflict, match="only a dead one"):
        enforcement.retry_command(uow, command_id=dead, reason="again", now=clock.now(), actor="op")
    done = enforcement.deliver_command(
        world.app.uow_factory, ScriptedSender(), dead, clock.now(), FAST
    )
    assert done.status == "done"


def dead_letter(world: World, clock: FixedClock) -> int:
    silent = ScriptedSender(Answer.TIMEOUT)
    dead = new_command(world)
    for _ in range(FAST.max_attempts):
        enforcement.deliver_command(world.app.uow_factory, silent, dead, clock.now(), FAST)
        clock.advance(timedelta(seconds=FAST.max_delay_s))
    assert command(world.app, dead).status == "dead"
    return dead


def test_the_api_lists_dead_letters_and_an_admin_retries_one(
    database_url: str, clock: FixedClock
) -> None:
    app = api_app(database_url, clock, radius_token=TOKEN)
    try:
        world = build_world(app, clock.now())
        tokens = make_world(app).tokens
        start_session(world)
        settle(world)
        pending = new_command(world)
        dead = dead_letter(world, clock)
        admin = Api(app, tokens["ops"])
        listed = admin.get("/api/v1/outbox", params={"status": "dead"})
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert (item["id"], item["status"], item["attempts"]) == (dead, "dead", 3)
        assert "after 3 attempts" in item["last_error"]
        assert item["next_attempt_at"] is None
        every = admin.get("/api/v1/outbox").json()["items"]
        assert [i["id"] for i in every][:2] == [dead, pending]  # newest first
        assert admin.get("/api/v1/outbox?status=lost").status_code == 422
        assert Api(app, tokens["auditor"]).get("/api/v1/outbox").status_code == 200
        assert Api(app, tokens["north"]).get("/api/v1/outbox").status_code == 403

        def retry(token: str, command_id: int, reason: str = "NAS fixed") -> Any:
            return Api(app, tokens[token]).post(
                f"/api/v1/outbox/{command_id}/retry", json={"reason": reason}
            )

        assert retry("auditor", dead).status_code == 403
        assert retry("north", dead).status_code == 403
        assert retry("ops", 999_999).status_code == 404
        assert retry("ops", dead, "").status_code == 422
        assert command(app, dead).status == "dead"  # nothing written by the refusals
        answered = retry("ops", dead)
        assert answered.status_code == 200, answered.text
        assert (answered.json()["status"], answered.json()["attempts"]) == ("pending", 0)
        again = retry("ops", dead)
        assert (again.status_code, again.json()["field"]) == (409, "status")
        [retried] = events_of(app, "outbox.retried")
        assert retried.reason == "NAS fixed"
    finally:
        app.close()


def test_the_console_shows_dead_letters_and_an_admin_retries_one(
    database_url: str, clock: FixedClock
) -> None:
    app = web_app(database_url, clock)
    try:
        world = build_world(app, clock.now())
        for username, role in [("alice", "admin"), ("rita", "readonly")]:
            with app.uow() as uow:
                add_staff(
                    uow,
                    username=username,
                    password=PASSWORD,
                    role=role,
                    reseller_id=None,
                    now=clock.now(),
                    actor="test",
                )
        start_session(world)
        settle(world)
        dead = dead_letter(world, clock)
        rita = Browser(app)
        rita.sign_in_staff("rita")
        seen = rita.get("/console/outbox?status=dead")
        assert seen.status_code == 200
        assert f'id="command-{dead}"' in seen.text
        assert "after 3 attempts" in seen.text
        assert f'action="/console/outbox/{dead}/retry"' not in seen.text  # admins only
        assert rita.post(f"/console/outbox/{dead}/retry", {"reason": "x"}).status_code == 403
        assert rita.get("/console/outbox?status=lost").status_code == 422
        alice = Browser(app)
        alice.sign_in_staff("alice")
        page = alice.get("/console/outbox")
        assert 'href="/console/outbox"' in page.text  # the nav link
        assert f'action="/console/outbox/{dead}/retry"' in page.text
        done = alice.submit(f"/console/outbox/{dead}/retry", {"reason": "NAS rebooted"})
        assert done.status_code == 200
        assert command(app, dead).status == "pending"
        assert f'id="command-{dead}"' not in alice.get("/console/outbox?status=dead").text
        [retried] = events_of(app, "outbox.retried")
        assert retried.actor.startswith("staff:alice")
        assert retried.reason == "NAS rebooted"
    finally:
        app.close()
