"""Benchmark: one tick that charges N prepaid services, on SQLite and/or PostgreSQL.

    python bench/tick.py [--services 100000 ...] [--db sqlite|postgresql|both] [--chunk-size 2000]

For each size and database: a fresh database (a SQLite file in a temporary folder, or a new
PostgreSQL database ``ispbill_bench_<random>`` on 127.0.0.1:5432 as user postgres, dropped at
the end), migrated like production; N prepaid customers, each with one active service on a
monthly customer-cycle plan billed up to 2026-02-01 and 100.00 USD of opening funds, written
with set-based bulk inserts (Core executemany for customers and services, ``ledger.post_batch``
for the funds). Then ONE tick at 2026-02-01T00:00Z, the next period start, runs in a fresh child
process, so its peak memory is the tick's and not the set-up's; it must charge every service
once and leave the ledger balanced. Figures are printed, never asserted: machines differ.

Give several sizes (``--services 10000 100000``) to see that memory stays flat as the customer
base grows: the tick works in chunks of ``--chunk-size`` customers.

    python bench/tick.py --processes 1 2 [--services 20000] [--range-size 1000]

measures the scheduled tick instead (PostgreSQL): for each count P, a fresh database set up by
``ispbill init`` and filled as above, P ``ispbill worker`` processes started and registered,
then one run requested as ``POST /api/v1/ticks`` does; the time from the request to the run's
success (the plan, then its range jobs shared by the workers) gives services/s per worker count.
The workers read the tick's instant from ISPBILL_CLOCK_FILE (the test-only clock).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import (
    SETUP_AT,
    TICK_AT,
    add_class_and_plan,
    bulk_fill,
    customer_row,
    fresh_database,
)

from ispbill.adapters.db import ledger_store as ledger
from ispbill.adapters.db.migrate import upgrade
from ispbill.adapters.db.models import Charge, Service
from ispbill.bootstrap import bootstrap
from ispbill.clock import FixedClock
from ispbill.domain.money import Money
from ispbill.entrypoints.jobs.tasks import request_tick
from ispbill.use_cases.billing import tick_runs
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog.offerings import NewPlan

CURRENCY = "USD"
FUNDS = Money.from_major("100.00", CURRENCY)
PLAN = NewPlan(name="Home 30", price="30.00", currency=CURRENCY, download="50M", upload="10M")


def build(url: str, services: int) -> float:
    """Migrate and fill the database; returns the seconds it took."""
    started = time.perf_counter()
    upgrade(url)
    app = bootstrap(database_url=url)
    try:
        class_id, plan_id = add_class_and_plan(app, "Bench", PLAN, now=SETUP_AT)
        bulk_fill(app, services, plan_id, lambda n: _customer(n, class_id), FUNDS)
    finally:
        app.close()
    return time.perf_counter() - started


def _customer(number: int, class_id: int) -> dict[str, Any]:
    """A numbered USD customer: names only need to be unique here."""
    return customer_row(f"bench-{number:07d}", class_id, currency=CURRENCY)


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss_kib() -> int:
    """Start measuring the peak resident set from now; returns the current one.

    ``ru_maxrss`` survives ``exec`` on Linux (the child would report the parent's set-up peak),
    so the kernel's high-water mark is reset instead (``/proc/self/clear_refs``, Linux 4.0+).
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _proc_status_kib("VmRSS") or 0


def peak_rss_kib() -> int:
    return _proc_status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_tick(url: str, chunk_size: int, trace: bool, workers: int) -> dict[str, Any]:
    """The measured part, in its own process: one tick, then the checks."""
    app = bootstrap(database_url=url)
    try:
        with app.uow() as uow:  # warm the pool and the mappers outside the measurement
            uow.session.scalar(select(func.count()).select_from(Service))
        rss_before_kib = reset_peak_rss_kib()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        report = tick(app.uow, now=TICK_AT, chunk_size=chunk_size, workers=workers)
        wall = time.perf_counter() - started
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
        rss_after_kib = peak_rss_kib()
        with app.uow() as uow:
            charges = uow.session.scalar(select(func.count()).select_from(Charge))
            findings = ledger.check(uow.session)
    finally:
        app.close()
    return {
        "seconds": wall,
        "customers": report.customers,
        "charges_in_report": report.charges,
        "charges_stored": int(charges or 0),
        "chunks": report.chunks,
        "rss_before_mib": rss_before_kib / 1024,
        "rss_peak_mib": rss_after_kib / 1024,
        "traced_peak_mib": traced_peak / 2**20 if traced_peak is not None else None,
        "ledger_findings": [f.describe() for f in findings[:5]],
    }


def measure(
    kind: str, services: int, chunk_size: int, trace: bool, workers: int, workdir: Path
) -> None:
    with fresh_database(kind, workdir) as url:
        setup_seconds = build(url, services)
        child = subprocess.run(
            [sys.executable, __file__, "--tick-only", url, "--chunk-size", str(chunk_size)]
            + ["--workers", str(workers)]
            + (["--tracemalloc"] if trace else []),
            check=False,
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(f"{kind:10} services={services:>7} TICK FAILED:", flush=True)
            print(child.stderr.strip()[-3000:], flush=True)
            return
        result = json.loads(child.stdout.strip().splitlines()[-1])
        if kind == "sqlite":
            size_mib = Path(make_url(url).database or "").stat().st_size / 2**20
        else:
            size_mib = None
    ok = result["charges_stored"] == services and not result["ledger_findings"]
    print(
        f"{kind:10} services={services:>7} chunk={chunk_size:>5} "
        f"setup={setup_seconds:6.1f}s tick={result['seconds']:7.2f}s "
        f"{services / result['seconds']:8.0f} services/s workers={workers} "
        f"rss before={result['rss_before_mib']:6.1f} MiB peak={result['rss_peak_mib']:6.1f} MiB "
        f"(+{result['rss_peak_mib'] - result['rss_before_mib']:.1f})"
        + (
            f" tracemalloc peak={result['traced_peak_mib']:.1f} MiB"
            if result["traced_peak_mib"] is not None
            else ""
        )
        + (f" db={size_mib:.0f} MiB" if size_mib is not None else "")
        + f" charges={result['charges_stored']}"
        + (" ledger balanced" if not result["ledger_findings"] else " LEDGER UNBALANCED")
        + ("" if ok else "  <-- CHECK FAILED"),
        flush=True,
    )
    for finding in result["ledger_findings"]:
        print(f"    {finding}")


ISPBILL = Path(sys.executable).with_name("ispbill")


def measure_processes(
    processes: int, services: int, range_size: int, workdir: Path
) -> dict[str, Any]:
    """One scheduled run over ``services`` customers by ``processes`` worker processes."""
    with fresh_database("postgresql", workdir) as url:
        setup_seconds = build(url, services)
        env = {**os.environ, "ISPBILL_DATABASE_URL": url}
        subprocess.run([str(ISPBILL), "init"], env=env, check=True, capture_output=True)
        clock_file = workdir / f"now-{processes}"
        clock_file.write_text(TICK_AT.isoformat())
        env |= {
            "ISPBILL_CLOCK_FILE": str(clock_file),
            "ISPBILL_TICK_RANGE_SIZE": str(range_size),
        }
        logs = [(workdir / f"worker-{processes}-{n}.log").open("wb") for n in range(processes)]
        workers = [
            subprocess.Popen([str(ISPBILL), "worker"], env=env, stdout=log, stderr=log)
            for log in logs
        ]
        app = bootstrap(database_url=url, clock=FixedClock(TICK_AT))
        try:
            deadline = time.monotonic() + 120
            while _registered(app) < processes:  # started and listening, not measured
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise RuntimeError(f"workers did not start; see {workdir}")
                time.sleep(0.1)
            started = time.perf_counter()
            run_id = request_tick(app, actor="bench").id
            while True:
                with app.uow() as uow:
                    run = tick_runs.run_of(uow, run_id)
                if run.status in ("succeeded", "failed"):
                    break
                if time.monotonic() > deadline + 3600:
                    raise RuntimeError(f"run {run_id} did not finish; see {workdir}")
                time.sleep(0.02)
            wall = time.perf_counter() - started
            with app.uow() as uow:
                charges = int(uow.session.scalar(select(func.count()).select_from(Charge)) or 0)
                findings = ledger.check(uow.session)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=60)
            for log in logs:
                log.close()
            app.close()
    return {
        "processes": processes,
        "status": run.status,
        "ranges": run.ranges_total,
        "seconds": wall,
        "setup_seconds": setup_seconds,
        "charges": charges,
        "ledger_balanced": not findings,
    }


def _registered(app: Any) -> int:
    with app.engine.connect() as connection:
        return int(
            connection.exec_driver_sql("SELECT count(*) FROM procrastinate_workers").scalar() or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[100_000])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--chunk-size", type=int, default=2000)
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="Also report the Python heap peak (slows the tick down).",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Connections sharing the fast path (PostgreSQL)."
    )
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        help="Measure the scheduled tick by this many `ispbill worker` processes (PostgreSQL).",
    )
    parser.add_argument(
        "--range-size", type=int, default=1000, help="Customers per tick_range job (--processes)."
    )
    parser.add_argument("--tick-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.processes:
        with tempfile.TemporaryDirectory(prefix="ispbill-bench-") as folder:
            for services in args.services:
                for processes in args.processes:
                    result = measure_processes(processes, services, args.range_size, Path(folder))
                    ok = (
                        result["status"] == "succeeded"
                        and result["charges"] == services
                        and result["ledger_balanced"]
                    )
                    print(
                        f"postgresql services={services:>7} worker processes={processes:>2} "
                        f"ranges={result['ranges']} setup={result['setup_seconds']:6.1f}s "
                        f"run={result['seconds']:7.2f}s "
                        f"{services / result['seconds']:8.0f} services/s "
                        f"charges={result['charges']} run {result['status']}"
                        + (
                            " ledger balanced"
                            if result["ledger_balanced"]
                            else " LEDGER UNBALANCED"
                        )
                        + ("" if ok else "  <-- CHECK FAILED"),
                        flush=True,
                    )
        return
    if args.tick_only:
        print(json.dumps(run_tick(args.tick_only, args.chunk_size, args.tracemalloc, args.workers)))
        return
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    with tempfile.TemporaryDirectory(prefix="ispbill-bench-") as folder:
        for kind in kinds:
            for services in args.services:
                measure(
                    kind, services, args.chunk_size, args.tracemalloc, args.workers, Path(folder)
                )


if __name__ == "__main__":
    main()
