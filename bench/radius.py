"""Benchmark: Access-Requests through FreeRADIUS + rlm_rest + ispbill, next to FreeRADIUS
answering from its ``files`` module alone (the ceiling).

    python bench/radius.py [--subscribers 1000] [--requests 10000] [--parallel 128]
                           [--window 64] [--db sqlite|postgresql] [--api-workers 1]

A fresh database (SQLite file or a new PostgreSQL database, dropped at the end) gets N active
subscribers (one prepaid customer with N services, each with a PPPoE username and password, on
NAS 127.0.0.1). ispbill's web application runs under uvicorn on loopback (``--api-workers``
processes, access log off); FreeRADIUS 3.2 runs with the configuration ``ispbill radius config``
writes (``-f``, threaded, ``reject_delay 0``). The ceiling is a second FreeRADIUS whose
``files`` module holds the same users and rate attribute, with no HTTP hop. Each is driven twice:

* radclient with ``-p PARALLEL`` outstanding requests over N requests (PAP, each with
  Message-Authenticator): requests per second from the wall time;
* a pyrad-built asyncio client keeping ``--window`` requests outstanding: requests per second
  and latency percentiles (send to answer).

Every answer must be an Access-Accept. Figures are printed, never asserted: the machine is
shared, and the load generator runs on the same 2 cores as FreeRADIUS and ispbill.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pyrad import packet
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import ACTOR, add_class_and_plan, free_port, fresh_database, uvicorn_server

from ispbill.adapters.db.migrate import upgrade
from ispbill.adapters.db.models import NetworkIdentity, table_of
from ispbill.adapters.radius.coa import dictionary
from ispbill.adapters.radius.config import NasClient, RadiusConfig, SqlTarget, write_config
from ispbill.bootstrap import bootstrap
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, plan_id_of
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.service_lifecycle import new_services as services

TOKEN = "bench-radius-token-0123456789"
SECRET = "bench-nas-secret"
RATE = "10M/50M"
UDP = socket.SOCK_DGRAM


def users(count: int) -> list[tuple[str, str]]:
    return [(f"user{i:06d}", f"pw-{i:06d}") for i in range(1, count + 1)]


def populate(url: str, count: int) -> None:
    """N active services with identities (services through the use cases, identities in bulk)."""
    upgrade(url)
    now = datetime.now(UTC).replace(microsecond=0)  # noqa: TID251 - the real server stamps sessions
    app = bootstrap(database_url=url)
    try:
        plan = catalog.NewPlan(
            name="Home 50", price="1.00", currency="USD", download="50M", upload="10M"
        )
        add_class_and_plan(app, "Home", plan, now=now)
        with app.uow() as uow:
            customer = customer_cases.add_customer(
                uow,
                spec=customer_cases.NewCustomer(
                    name="Bench",
                    customer_class_id=customer_class_id_of(uow, "Home"),
                    currency="USD",
                    available_funds=f"{count * 2}.00",
                ),
                now=now,
                actor=ACTOR,
            ).id
        ids = []
        for _ in range(count):
            with app.uow() as uow:
                spec = services.NewService(customer_id=customer, plan_id=plan_id_of(uow, "Home 50"))
                ids.append(services.add_service(uow, spec=spec, now=now, actor=ACTOR).id)
        tick(app.uow, now=now)
        with app.uow() as uow:
            network.add_nas(
                uow,
                spec=network.NewNas(name="bench", address="127.0.0.1", secret=SECRET),
                now=now,
                actor=ACTOR,
            )
        with app.uow() as uow:
            uow.session.execute(
                insert(table_of(NetworkIdentity)),
                [
                    {
                        "service_id": sid,
                        "username": u,
                        "password": p,
                        "password_scheme": "cleartext",
                        "updated_at": now,
                    }
                    for sid, (u, p) in zip(ids, users(count), strict=True)
                ],
            )
            uow.mark_answers_stale(None, now)  # precompute every answer (rlm_sql)
            uow.commit()
    finally:
        app.close()


def rest_config(
    out: Path, api_port: int, auth_port: int, authorize: str = "rest", url: str = ""
) -> Path:
    write_config(
        RadiusConfig(
            out=out,
            authorize=authorize,
            sql=SqlTarget.from_url(url) if authorize == "sql" else None,
            api_url=f"http://127.0.0.1:{api_port}",
            token=TOKEN,
            clients=[NasClient("bench", "127.0.0.1", SECRET, True)],
            listen="127.0.0.1",
            auth_port=auth_port,
            acct_port=free_port(UDP),
            reject_delay=0,
            max_servers=64,
        )
    )
    return out


def files_config(rest_dir: Path, out: Path, auth_port: int, count: int) -> Path:
    """The same server answering from the ``files`` module: the ceiling without HTTP."""
    shutil.copytree(rest_dir, out)
    radiusd = (
        (out / "radiusd.conf").read_text().replace(str(rest_dir.resolve()), str(out.resolve()))
    )
    (out / "radiusd.conf").write_text(radiusd)
    (out / "mods-enabled" / "rest").unlink()
    (out / "mods-enabled" / "files").write_text("files {\n\tfilename = ${confdir}/users\n}\n")
    (out / "users").write_text(
        "".join(
            f'{u} Cleartext-Password := "{p}"\n\tMikrotik-Rate-Limit = "{RATE}"\n\n'
            for u, p in users(count)
        )
    )
    (out / "sites-enabled" / "ispbill").write_text(
        "server files {\n"
        f"\tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {auth_port}\n\t}}\n"
        "\tauthorize {\n\t\tfiles\n\t\tpap\n\t}\n"
        "\tauthenticate {\n\t\tAuth-Type PAP {\n\t\t\tpap\n\t\t}\n\t}\n}\n"
    )
    return out


def start_freeradius(config: Path) -> subprocess.Popen[bytes]:
    output = config / "stdout.log"
    process = subprocess.Popen(
        ["freeradius", "-f", "-d", str(config), "-l", "stdout"],
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "Ready to process requests" in output.read_text():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"freeradius did not start:\n{output.read_text()}")


def radclient_rps(
    port: int, requests: list[tuple[str, str]], parallel: int, workdir: Path
) -> dict[str, float]:
    batch = workdir / "requests.txt"
    batch.write_text(
        "\n".join(
            f'User-Name = "{u}"\nUser-Password = "{p}"\nMessage-Authenticator = 0x00\n'
            for u, p in requests
        )
    )
    started = time.perf_counter()
    done = subprocess.run(
        [
            "radclient",
            "-q",
            "-s",
            "-c",
            "1",
            "-p",
            str(parallel),
            "-r",
            "3",
            "-t",
            "5",
            "-f",
            str(batch),
            f"127.0.0.1:{port}",
            "auth",
            SECRET,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    accepted = _summary(done.stdout + done.stderr, "Accepted")
    return {
        "requests": len(requests),
        "accepted": accepted,
        "seconds": round(elapsed, 3),
        "rps": round(len(requests) / elapsed, 1),
    }


def _summary(output: str, label: str) -> float:
    for line in output.splitlines():
        if label in line:
            return float(line.split(":")[-1].strip())
    return float("nan")


async def _drive(port: int, requests: list[tuple[str, str]], window: int) -> dict[str, float]:
    """Keep ``window`` requests outstanding on one socket (ids from a free list, so at most
    256); time each from send to answer."""
    loop = asyncio.get_running_loop()
    secret = SECRET.encode()
    free_ids = list(range(256))
    pending: dict[int, tuple[float, asyncio.Future[bytes]]] = {}

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            entry = pending.pop(data[1], None)
            if entry is not None and not entry[1].done():
                entry[1].set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Protocol, remote_addr=("127.0.0.1", port))
    latencies: list[float] = []
    accepted = 0
    semaphore = asyncio.Semaphore(min(window, 200))

    async def one(user: str, password: str) -> None:
        nonlocal accepted
        async with semaphore:
            ident = free_ids.pop()
            request = packet.AuthPacket(
                id=ident, secret=secret, dict=dictionary(), message_authenticator=True
            )
            request["User-Name"] = user
            request["User-Password"] = request.PwCrypt(password)
            raw = request.RequestPacket()
            future: asyncio.Future[bytes] = loop.create_future()
            started = time.perf_counter()
            pending[ident] = (started, future)
            transport.sendto(raw)
            try:
                answer = await asyncio.wait_for(future, timeout=5)
                latencies.append(time.perf_counter() - started)
                accepted += answer[0] == packet.AccessAccept
            except TimeoutError:
                pending.pop(ident, None)
            finally:
                free_ids.append(ident)

    started = time.perf_counter()
    await asyncio.gather(*(one(u, p) for u, p in requests))
    elapsed = time.perf_counter() - started
    transport.close()
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return (
            round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)
            if ordered
            else float("nan")
        )

    return {
        "requests": len(requests),
        "accepted": accepted,
        "rps": round(len(requests) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else float("nan"),
    }


def measure(name: str, port: int, args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    pool = users(args.subscribers)
    requests = [pool[i % len(pool)] for i in range(args.requests)]
    radclient_rps(port, requests[: min(1000, len(requests))], args.parallel, workdir)  # warm up
    burst = radclient_rps(port, requests, args.parallel, workdir)
    paced = asyncio.run(_drive(port, requests, args.window))
    return {"server": name, "radclient": burst, "window": paced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--parallel", type=int, default=128, help="radclient -p")
    parser.add_argument("--window", type=int, default=64, help="outstanding requests (pyrad)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument(
        "--authorize",
        nargs="+",
        choices=["rest", "sql"],
        default=["rest", "sql"],
        help="authorize through rlm_rest (HTTP to ispbill) and/or rlm_sql (precomputed answers)",
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="ispbill-radius-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database(args.db, workdir) as url:
            print(f"populating {args.subscribers} subscribers on {args.db} ...", flush=True)
            populate(url, args.subscribers)
            api_port, rest_port, files_port = free_port(), free_port(UDP), free_port(UDP)
            base_dir = rest_config(workdir / "base", api_port, rest_port)
            files_dir = files_config(base_dir, workdir / "files", files_port, args.subscribers)
            ceiling = start_freeradius(files_dir)
            try:
                results.append(measure("freeradius files (ceiling)", files_port, args, workdir))
            finally:
                ceiling.terminate()
                ceiling.wait()
            api_env = {"ISPBILL_RADIUS_TOKEN": TOKEN}
            with uvicorn_server(
                url, args.api_workers, port=api_port, env=api_env, log=workdir / "api.log"
            ):
                for authorize in args.authorize:
                    port = free_port(UDP)
                    config = rest_config(workdir / authorize, api_port, port, authorize, url)
                    server = start_freeradius(config)
                    label = "rlm_rest + ispbill" if authorize == "rest" else "rlm_sql (precomputed)"
                    try:
                        results.append(
                            measure(
                                f"freeradius + {label} ({args.db}, {args.api_workers} api worker(s))",
                                port,
                                args,
                                workdir,
                            )
                        )
                    finally:
                        server.terminate()
                        server.wait()
    print(
        f"{'server':62} {'radclient rps':>13} {'window rps':>10} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'accepted':>9}"
    )
    for row in results:
        burst, paced = row["radclient"], row["window"]
        assert isinstance(burst, dict)
        assert isinstance(paced, dict)
        print(
            f"{row['server']:62} {burst['rps']:>13} {paced['rps']:>10} {paced['p50_ms']:>7} "
            f"{paced['p95_ms']:>7} {paced['p99_ms']:>7} {paced['accepted']:>9}"
        )
    print(json.dumps({"args": vars(args), "cpus": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
