"""The engine runs itself (issue 15): nobody types ``ispbill run``.

On SQLite the in-process scheduler calls the task functions; on PostgreSQL they are
procrastinate jobs, run here by a worker in this process that stops once the queues are empty
(``wait=False``). The clock is a FixedClock moved forward: nothing sleeps for the thing under
test. A prepaid service falls due and is charged by the scheduled tick, a suspended subscriber
who pays gets a CoA from a job (the NAS stand-in counts it), a reminder e-mail goes out through
``send_mail`` (aiosmtpd counts it), and jobs are deferred in the transaction that causes them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from api_support import Api
from mail_support import Mailbox, kinds, mailer, smtp_server, stored
from pyrad import packet
from radius_support import TOKEN, NasStandIn, build_world, set_setting
from sqlalchemy import text
from test_api_serve import ISPBILL
from test_engine_cli import PREPAID, balance, seed
from test_outbox import commands, start_session
from typer.testing import CliRunner
from web_support import Browser, console_world

from ispbill.adapters.db import outbox
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.job_queue.procrastinate_app import jobs_available
from ispbill.adapters.radius.coa import PyradSender
from ispbill.bootstrap import App, LoopStatus, bootstrap
from ispbill.clock import FixedClock, SystemClock
from ispbill.domain.ranges import IdRange, cut
from ispbill.entrypoints.cli.main import app as cli
from ispbill.entrypoints.jobs import queue_worker, tasks
from ispbill.entrypoints.jobs.scheduler import Scheduler
from ispbill.entrypoints.jobs.tasks import Runtime
from ispbill.settings import Settings
from ispbill.use_cases.admin.api_tokens import create_token
from ispbill.use_cases.admin.web_auth import set_portal_login
from ispbill.use_cases.billing import tick_runs
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.collections import collection_policy
from scenarios.helpers import (
    ACTOR,
    add_class,
    add_customer,
    add_plan,
    add_service,
    at,
    charges,
    check_books,
    pay,
)

JAN1 = at(2026, 1, 1, 9)
PORTAL = "https://billing.example.net/portal"


def clear_jobs(app: App) -> None:
    """procrastinate's tables are not the fixtures' (they truncate ispbill's only)."""
    if app.settings.database_url.startswith("postgresql"):
        with app.uow() as uow:
            uow.session.execute(
                text("TRUNCATE procrastinate_jobs, procrastinate_periodic_defers CASCADE")
            )
            uow.commit()


def runtime(app: App, **extra: object) -> Runtime:
    rt = Runtime(
        app=app,
        coa=PyradSender(timeout_s=0.5),
        mailer=None,
        portal_url=PORTAL,
        jobs=jobs_available(app.settings.database_url),
    )
    for key, value in extra.items():
        setattr(rt, key, value)
    return rt


def drain(rt: Runtime) -> None:
    """Run the background work until nothing is due now: a worker that stops once its queues
    are empty (PostgreSQL), or one pass of every scheduled task (SQLite)."""
    if rt.jobs:
        status = LoopStatus("test")
        asyncio.run(
            queue_worker.work(
                queue_worker.build(rt, periodic_tasks=False),
                status=status,
                wait=False,
                polling_s=0.1,
                database_url=rt.app.settings.database_url,
            )
        )
        assert status.error is None, status.error
    else:
        Scheduler(rt, monotonic=lambda: 1e12).run_due()


def schedule_tick(rt: Runtime) -> None:
    """What the schedule does every minute: on PostgreSQL procrastinate's periodic deferrer
    defers ``scheduled_tick_plan``; on SQLite the scheduler calls ``tick_plan`` when due."""
    if rt.jobs:
        with rt.app.uow() as uow:
            uow.session.execute(
                text(
                    "SELECT procrastinate_defer_periodic_job_v2('tick', 'tick_plan', "
                    "'scheduled_tick_plan', 'scheduled_tick_plan', 0, 'schedule', "
                    "CAST(:ts AS bigint), jsonb_build_object('timestamp', CAST(:ts AS bigint)))"
                ),
                {"ts": int(rt.now.timestamp())},
            )
            uow.commit()
    drain(rt)


def jobs_of(app: App, task: str) -> list[tuple[str, dict[str, int]]]:
    with app.uow() as uow:
        rows = uow.session.execute(
            text(
                "SELECT status::text, args FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"
            ),
            {"t": task},
        ).all()
    return [(r[0], dict(r[1])) for r in rows]


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    application = bootstrap(
        settings=Settings(database_url=database_url, radius_token=TOKEN, tick_range_size=2),
        clock=FixedClock(JAN1),
    )
    clear_jobs(application)
    try:
        yield application
        check_books(application)
    finally:
        application.close()


def prepaid(app: App, name: str, funds: str) -> int:
    with app.uow() as uow:
        known = uow.session.execute(text("SELECT count(*) FROM plans")).scalar()
    if not known:
        add_class(app, JAN1)
        add_plan(app, JAN1, "Home", "30.00")
    customer = add_customer(app, JAN1, name)
    pay(app, JAN1, customer, funds, f"funds-{name}")
    add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
    return customer


def move(app: App, to: datetime) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(to)


def test_ranges_cover_every_id_with_no_gap() -> None:
    assert cut([3, 5, 9, 10, 11], 2) == [IdRange(3, 5), IdRange(6, 10), IdRange(11, 11)]
    assert cut([], 5) == []
    assert 7 in IdRange(6, 10)
    assert 11 not in IdRange(6, 10)
    with pytest.raises(ValueError, match="low <= high"):
        IdRange(2, 1)


def test_a_prepaid_service_falls_due_and_the_schedule_charges_it(app: App) -> None:
    """Nobody calls ``ispbill run``: the scheduled plan ticks the ranges up to now."""
    rt = runtime(app)
    customer = prepaid(app, "Ann", "100.00")
    schedule_tick(rt)
    assert [c.start for c in charges(app, customer)] == [date(2026, 1, 1)]
    move(app, at(2026, 2, 1, 0, 1))  # February's period falls due
    schedule_tick(rt)
    assert [c.start for c in charges(app, customer)] == [date(2026, 1, 1), date(2026, 2, 1)]
    with app.uow() as uow:
        last = tick_runs.last_runs(uow, limit=1)[0]
    assert (last.trigger, last.status, last.figures["charges"]) == ("schedule", "succeeded", 1)
    if rt.jobs:  # one tick_range job per range, each succeeded
        assert {status for status, _ in jobs_of(app, "tick_range")} == {"succeeded"}


def test_after_downtime_the_next_plan_catches_up_once(app: App) -> None:
    rt = runtime(app)
    customers = [prepaid(app, name, "200.00") for name in ("Ann", "Bob", "Cid")]
    move(app, at(2026, 4, 1, 0, 1))  # three months nobody ran anything
    schedule_tick(rt)
    for customer in customers:
        assert len(charges(app, customer)) == 4  # January to April, once each
    with app.uow() as uow:
        run = tick_runs.last_runs(uow, limit=1)[0]
    assert (run.ranges_total, run.ranges_done, run.figures["charges"]) == (2, 2, 12)
    schedule_tick(rt)  # the next minute's plan finds nothing due
    assert sum(len(charges(app, c)) for c in customers) == 12


def test_a_range_ticked_again_charges_nothing_twice(app: App) -> None:
    """A retried ``tick_range`` (a worker died after its commit) has no double effect."""
    rt = runtime(app)
    customer = prepaid(app, "Ann", "100.00")
    now = at(2026, 2, 1, 0, 1)
    tasks.tick_range(rt, None, customer, customer, now)
    tasks.tick_range(rt, None, customer, customer, now)
    assert len(charges(app, customer)) == 2
    other = IdRange(customer + 1, customer + 10)
    assert tasks.tick_range(rt, None, other.low, other.high, now).charges == 0
    # in a run, a range counted once: a retried job adds nothing to the run's figures
    move(app, at(2026, 3, 1, 0, 1))
    planned = tick_runs.plan_run(
        app.uow_factory, now=app.clock.now(), actor=ACTOR, defer=lambda *_: None
    )
    [within] = planned.ranges
    for _ in range(2):
        tasks.tick_range(rt, planned.run_id, within.low, within.high, planned.now)
    with app.uow() as uow:
        run = tick_runs.run_of(uow, planned.run_id)
    assert (run.status, run.ranges_done, run.figures["charges"]) == ("succeeded", 1, 1)
    assert len(charges(app, customer)) == 3


def test_a_suspended_subscriber_who_pays_gets_a_coa_from_a_job(app: App) -> None:
    nas = NasStandIn()
    try:
        world = build_world(
            app,
            app.clock.now(),
            balance_control="postpaid",
            credit_limit="10.00",
            nas_port=nas.port,
        )
        set_setting(app, app.clock.now(), "radius_active_address_list", "subscribers")
        start_session(world)
        rt = runtime(app)
        drain(rt)  # the set-up's suspension reaches the NAS first
        seen = len(nas.received)
        assert nas.received[-1].attributes["Mikrotik-Address-List"] == ["walled-garden"]
        pay(app, app.clock.now(), world.customer, "30.00", "restore-1")
        if rt.jobs:  # the job was deferred by the payment's own transaction
            assert [s for s, _ in jobs_of(app, "deliver_coa")][-1] == "todo"
        assert len(nas.received) == seen  # nothing is sent by the payment itself
        drain(rt)
        received = nas.wait_for(seen + 1)
        assert len(received) == seen + 1
        assert received[-1].code == packet.CoARequest
        assert received[-1].attributes["Mikrotik-Address-List"] == ["subscribers"]
        assert commands(app)[-1].status == "done"
        drain(rt)  # delivered once: a second pass sends nothing
        assert len(nas.received) == seen + 1
    finally:
        nas.close()


def test_a_reminder_goes_out_through_send_mail(app: App) -> None:
    with smtp_server() as (mailbox, port):
        rt = runtime(app, mailer=mailer(port))
        customer = reminded_by_schedule(app, rt, mailbox)
        [message] = mailbox.messages
        assert message["To"] == "dan@example.net"
        assert [row.status for row in stored(app)] == ["sent"]
        assert kinds(app, customer, "collection.") == ["collection.reminder"]
        if rt.jobs:
            assert [s for s, _ in jobs_of(app, "send_mail")] == ["succeeded"]
        drain(rt)
        assert len(mailbox.messages) == 1  # once


def reminded_by_schedule(app: App, rt: Runtime, mailbox: Mailbox) -> int:
    add_class(app, JAN1)
    add_plan(app, JAN1, "Home", "30.00")
    customer = add_customer(app, JAN1, "Dan", balance_control="postpaid", invoicing_mode="forward")
    add_service(app, JAN1, customer, "Home", active_from=date(2026, 1, 1))
    with app.uow() as uow:
        set_portal_login(
            uow,
            customer_id=customer_id_of(uow, "Dan"),
            email="dan@example.net",
            password=None,
            now=JAN1,
            actor=ACTOR,
        )
    with app.uow() as uow:
        collection_policy.set_values(
            uow,
            changes={"enabled": "true", "reminder_days_before": "2"},
            customer_class_id=None,
            now=JAN1,
            actor=ACTOR,
        )
    schedule_tick(rt)
    move(app, at(2026, 1, 27, 6))
    schedule_tick(rt)
    assert mailbox.messages == []
    move(app, at(2026, 1, 28, 6))  # two days before the suspension on the 30th
    schedule_tick(rt)
    return customer


@pytest.mark.postgres_only
def test_a_job_is_deferred_only_if_its_transaction_commits(app: App) -> None:
    nas = NasStandIn()
    try:
        world = build_world(
            app,
            app.clock.now(),
            balance_control="postpaid",
            credit_limit="10.00",
            nas_port=nas.port,
        )
        drain(runtime(app))  # the set-up's commands are delivered by their jobs
        assert {c.status for c in commands(app)} == {"done"}
        clear_jobs(app)
        before = len(commands(app))
        try:  # a use case that fails after writing its outbox row
            with app.uow() as uow:
                uow.begin_write()
                raise_after_write(uow, world.service)
        except RuntimeError:
            pass
        assert len(commands(app)) == before
        assert jobs_of(app, "deliver_coa") == []
        pay(app, app.clock.now(), world.customer, "30.00", "restore-1")
        new = [c.id for c in commands(app)][before:]
        assert new
        assert [args["command_id"] for _, args in jobs_of(app, "deliver_coa")] == new
    finally:
        nas.close()


def raise_after_write(uow: UnitOfWork, service_id: int) -> None:
    outbox.enqueue(uow.session, service_id=service_id, kind="service.active", reason="x", now=JAN1)
    uow.session.flush()
    raise RuntimeError("the use case fails after its write")


def test_a_tick_asked_for_answers_202_and_its_state(app: App) -> None:
    rt = runtime(app)
    customer = prepaid(app, "Ann", "100.00")
    with app.uow() as uow:
        token = create_token(uow, name="ops", role="admin", reseller_id=None, now=JAN1, actor=ACTOR)
    admin = Api(app, token.plaintext)
    asked = admin.post("/api/v1/ticks")
    assert asked.status_code == 202, asked.text
    run_id = asked.json()["id"]
    assert asked.headers["location"] == f"/api/v1/ticks/{run_id}"
    assert asked.json()["status"] == "queued"
    assert (asked.json()["job_id"] is not None) is rt.jobs
    assert charges(app, customer) == []  # nothing ran yet: the answer came first
    drain(rt)
    shown = admin.get(f"/api/v1/ticks/{run_id}")
    assert shown.status_code == 200
    assert (shown.json()["status"], shown.json()["figures"]["charges"]) == ("succeeded", 1)
    assert len(charges(app, customer)) == 1
    assert admin.get("/api/v1/ticks/999999").status_code == 404


def test_the_scheduler_keeps_going_when_a_task_fails_and_health_says_when_it_stopped(
    app: App,
) -> None:
    rt = runtime(app, jobs=False)
    status = LoopStatus("scheduler", running=True)
    clock = [0.0]
    scheduler = Scheduler(rt, status=status, monotonic=lambda: clock[0])
    calls: list[int] = []

    def broken(_rt: Runtime) -> None:
        calls.append(1)
        raise RuntimeError("database away")

    [plan] = [entry for entry in scheduler.entries if entry.name == "tick_plan"]
    plan.run = broken
    assert "tick_plan" in scheduler.run_due()
    assert status.state().startswith("retrying: tick_plan: RuntimeError")
    clock[0] += 2.0  # the back-off (2 s after the first failure) has passed
    scheduler.run_due()
    assert len(calls) == 2
    app.background["scheduler"] = status
    api = Api(app, None)
    assert api.get("/api/v1/health").status_code == 200
    stop = threading.Event()
    stop.set()
    scheduler.run(stop)  # ends: the loop has stopped
    health = api.get("/api/v1/health")
    assert health.status_code == 503
    assert health.json()["background"]["scheduler"].startswith("stopped")


@pytest.mark.postgres_only
def test_a_worker_without_its_database_retries_instead_of_dying(app: App) -> None:
    settings = app.settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:9/none"}
    )
    lost = bootstrap(settings=settings, clock=app.clock)
    rt = runtime(lost, jobs=True)
    status = LoopStatus("worker")
    stop = threading.Event()
    thread = threading.Thread(
        target=queue_worker.run, kwargs={"rt": rt, "status": status, "stop": stop}, daemon=True
    )
    thread.start()
    for _ in range(300):  # the pool gives up within 5 s
        if status.error:
            break
        threading.Event().wait(0.05)
    assert status.running
    assert status.error
    assert "retrying" in status.state()
    assert thread.is_alive()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert status.stopped
    lost.close()


def test_the_console_shows_the_schedule_runs_and_failed_jobs(
    database_url: str, clock: FixedClock
) -> None:
    with console_world(database_url, clock) as (web, _ids):
        clear_jobs(web)
        rt = runtime(web)
        browser = Browser(web)
        browser.sign_in_staff("alice")
        queued = browser.submit("/console/schedule/tick")
        assert queued.status_code == 200
        drain(rt)
        page = browser.get("/console/schedule")
        assert page.status_code == 200
        assert "<code>tick_plan</code></td><td>60 s" in page.text
        assert "succeeded" in page.text
        if rt.jobs:
            with web.uow() as uow:
                uow.session.execute(
                    text(
                        "UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = 'tick_plan'"
                    )
                )
                uow.commit()
            [(status, _args)] = jobs_of(web, "tick_plan")
            assert status == "failed"
            page = browser.get("/console/schedule")
            assert "/retry" in page.text
            job_id = page.text.split('action="/console/schedule/jobs/')[1].split("/")[0]
            browser.submit(f"/console/schedule/jobs/{job_id}/retry")
            assert [s for s, _ in jobs_of(web, "tick_plan")] == ["todo"]
        else:
            assert "No job queue on SQLite" in page.text


def test_periodic_tasks_are_registered_on_their_periods(app: App) -> None:
    rt = runtime(app, jobs=True)
    registered = queue_worker.build(rt)
    crons = {
        task.task.name: task.cron for task in registered.periodic_registry.periodic_tasks.values()
    }
    assert crons["scheduled_tick_plan"] == "* * * * *"
    assert crons["sweep_outboxes"] == "* * * * *"
    assert crons["expire_refill_cards"] == "0 * * * *"  # maintenance: hourly
    assert crons["retry_stalled_jobs"] == "* * * * * */15"  # a dead worker's jobs come back
    assert queue_worker.cron_every(20) == "* * * * * */20"
    assert queue_worker.cron_every(300) == "*/5 * * * *"
    assert set(tasks.RUNNERS) >= {p.name for p in tasks.schedule(app.settings, jobs=True)}


def test_ispbill_worker_charges_what_falls_due_and_stops_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    """A real ``ispbill worker`` process (the in-process scheduler on SQLite, procrastinate on
    PostgreSQL) charges February's period with nobody typing ``ispbill run``, then ends cleanly
    on SIGTERM."""
    seed(database_url, PREPAID)
    assert balance(database_url, "Alice") == "100.00 USD"  # nobody ticked yet
    env = {**os.environ, "ISPBILL_DATABASE_URL": database_url}
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [*ISPBILL, "--now", "2026-02-01T00:01:00Z", "worker", "--concurrency", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while balance(database_url, "Alice") != "27.40 USD" and time.monotonic() < deadline:
                if worker.poll() is not None:
                    break
                time.sleep(0.3)
            charged = balance(database_url, "Alice")
        finally:
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=30)
    assert charged == "27.40 USD", (tmp_path / "worker.log").read_text()
    assert code == 0, (tmp_path / "worker.log").read_text()


def test_serve_can_run_without_background_work_and_worker_takes_queues() -> None:
    serve = CliRunner().invoke(cli, ["serve", "--help"])
    assert "--no-background" in serve.output
    worker = CliRunner().invoke(cli, ["worker", "--help"])
    assert "--concurrency" in worker.output
    assert "--queues" in worker.output


@pytest.mark.postgres_only
def test_a_coa_left_pending_is_retried_by_a_job_at_its_next_attempt(database_url: str) -> None:
    """The NAS does not answer: the job records the attempt and defers its retry at the
    command's next attempt (1 s of back-off), which a worker then delivers. procrastinate
    schedules by the database's clock, so this clock starts at the real now."""
    clock = FixedClock(SystemClock().now())
    app = bootstrap(settings=Settings(database_url=database_url, radius_token=TOKEN), clock=clock)
    clear_jobs(app)
    nas = NasStandIn()
    try:
        world = build_world(
            app, clock.now(), balance_control="postpaid", credit_limit="10.00", nas_port=nas.port
        )
        set_setting(app, clock.now(), "radius_active_address_list", "subscribers")
        start_session(world)
        rt = runtime(app)
        drain(rt)
        seen = len(nas.received)
        nas.script.append("drop")
        # a little ahead of the database's clock, so the retry (1 s after the attempt) is
        # still waiting when the first worker stops
        clock.set(SystemClock().now() + timedelta(seconds=5))
        pay(app, clock.now(), world.customer, "30.00", "restore-1")
        drain(rt)  # dropped: no answer within the sender's timeout
        assert len(nas.received) == seen + 1
        assert commands(app)[-1].status == "pending"
        assert [s for s, _ in jobs_of(app, "deliver_coa")][-1] == "todo"  # the retry, waiting
        while SystemClock().now() < clock.now() + timedelta(seconds=1.2):
            time.sleep(0.1)  # the back-off, by the database's clock (about 6 s)
        clock.advance(timedelta(seconds=2))
        drain(rt)
        assert len(nas.received) == seen + 2
        assert nas.received[-1].attributes["Mikrotik-Address-List"] == ["subscribers"]
        assert commands(app)[-1].status == "done"
        check_books(app)
    finally:
        nas.close()
        app.close()
