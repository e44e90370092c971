"""``ispbill serve`` takes its address and worker count from the settings and serves the API
(here two worker processes), and ``ispbill tokens session`` opens a customer's session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from api_support import free_port

ISPBILL = [str(Path(sys.executable).with_name("ispbill"))]


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*ISPBILL, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


@pytest.mark.postgres_only  # the production setup; subprocesses are slow, one database is enough
def test_serve_with_workers_from_settings(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ISPBILL_DATABASE_URL": database_url,
        "ISPBILL_API_PORT": str(port),
        "ISPBILL_API_WORKERS": "2",
    }
    run_cli(env, "init")
    run_cli(env, "classes", "add", "Home")
    run_cli(env, "customers", "add", "Ada", "--class", "Home", "--currency", "USD")
    token = run_cli(env, "tokens", "create", "ops", "--role", "admin").strip().splitlines()[-1]
    session = run_cli(env, "tokens", "session", "Ada", "--minutes", "5").strip().splitlines()[-1]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([*ISPBILL, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail(
                    "ispbill serve did not come up: " + (tmp_path / "serve.log").read_text()
                )
            time.sleep(0.2)
        # a generous timeout: the second worker may still be starting on a loaded machine
        who = httpx.get(
            f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert who.json()["role"] == "admin"
        me = httpx.get(
            f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {session}"}, timeout=60
        )
        assert (me.json()["role"], me.json()["customer_id"]) == ("customer", 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
