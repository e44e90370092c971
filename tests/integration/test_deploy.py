"""The deployment kit (deploy/systemd, docs/deploy.md): every unit passes
``systemd-analyze verify`` with the venv's real paths, every command a unit runs exists with the
options it passes, the FreeRADIUS units' commands accept the configuration ispbill writes, and
``ispbill serve`` believes X-Forwarded-For only from the proxies it is told to trust."""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from api_support import free_port

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ISPBILL = Path(sys.executable).with_name("ispbill")
INSTALLED = "/opt/ispbill/bin/ispbill"  # where docs/deploy.md installs the venv
RADDB = "/etc/ispbill/raddb"
ANALYZE = shutil.which("systemd-analyze")
FREERADIUS = shutil.which("freeradius")
TOKEN = "deploy-test-token-0123456789"


def unit_files() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def directives(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit, by key, in order (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def commands(path: Path) -> list[list[str]]:
    """The command lines a unit runs (ExecStart, ExecStartPre, ...), split like systemd."""
    keys = ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload", "ExecStop")
    found = directives(path)
    return [shlex.split(line.lstrip("-+!@:")) for key in keys for line in found.get(key, [])]


def require(tool: str | None, name: str) -> str:
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required under CI (bash scripts/system-deps.sh --test)")
        pytest.skip(f"{name} not installed (bash scripts/system-deps.sh --test)")
    return tool


def test_the_kit_has_the_units_docs_deploy_md_describes() -> None:
    names = {p.name for p in unit_files()}
    assert names == {
        "ispbill-serve.service",
        "ispbill-worker@.service",
        "ispbill-radius-config.service",
        "ispbill-radius.service",
    }
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for name in names:
        assert name in guide, f"docs/deploy.md does not mention {name}"
    assert "docs/deploy.md" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("unit", unit_files(), ids=lambda p: p.name)
def test_each_unit_is_hardened_and_restarts_on_failure(unit: Path) -> None:
    found = directives(unit)
    assert found.get("NoNewPrivileges") == ["yes"]
    assert found.get("ProtectSystem") == ["strict"]
    assert found.get("ProtectHome") == ["yes"]
    assert found.get("PrivateTmp") == ["yes"]
    if found["Type"] != ["oneshot"]:
        assert found.get("Restart") == ["on-failure"]
    if any(c[0] == INSTALLED for c in commands(unit)):
        # the settings (database URL, secrets) come from one root-owned file
        assert found.get("EnvironmentFile") == ["/etc/ispbill/ispbill.env"]
        if unit.name != "ispbill-radius-config.service":
            assert found.get("User") == ["ispbill"]
            assert found.get("CapabilityBoundingSet") == [""]


def test_systemd_analyze_verify_passes_on_every_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` needs every ExecStart to exist: the units are rendered with
    this venv's ispbill (and, if missing, a stand-in FreeRADIUS path is not invented: the test
    requires the real one)."""
    analyze = require(ANALYZE, "systemd-analyze (Debian package systemd)")
    require(FREERADIUS, "freeradius")
    rendered = []
    for unit in unit_files():
        target = tmp_path / unit.name
        target.write_text(unit.read_text().replace(INSTALLED, str(ISPBILL)))
        rendered.append(target)
    # a template is verified through an instance of it
    names = [str(p) if "@." not in p.name else str(p).replace("@.", "@1.") for p in rendered]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    # warnings about the distribution's own units (Debian's freeradius.service, loaded for
    # Conflicts=) are not ours; any line naming one of ours is a failure
    ours = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if str(tmp_path) in line or "ispbill-" in line
    ]
    assert done.returncode == 0, done.stdout + done.stderr
    assert ours == []


def test_a_broken_unit_fails_the_same_check(tmp_path: Path) -> None:
    """The check above can fail: a missing program and an unknown directive are reported."""
    analyze = require(ANALYZE, "systemd-analyze (Debian package systemd)")
    source = (UNITS / "ispbill-serve.service").read_text()
    broken = tmp_path / "ispbill-serve.service"
    broken.write_text(source.replace(INSTALLED, str(tmp_path / "no-such-ispbill")))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    broken.write_text(source.replace(INSTALLED, str(ISPBILL)) + "\n[Service]\nRestartt=always\n")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(broken)], capture_output=True, text=True, check=False
    )
    assert "Unknown key 'Restartt'" in done.stderr


@pytest.mark.parametrize(
    "unit",
    [p for p in unit_files() if any(c[0] == INSTALLED for c in commands(p))],
    ids=lambda p: p.name,
)
def test_every_ispbill_command_a_unit_runs_exists_with_its_options(unit: Path) -> None:
    for command in commands(unit):
        if command[0] != INSTALLED:
            continue
        subcommand = []
        for word in command[1:]:  # the command path: the words before the first option
            if word.startswith("-"):
                break
            subcommand.append(word)
        done = subprocess.run(
            [str(ISPBILL), *subcommand, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
        )
        assert done.returncode == 0, f"{unit.name}: ispbill {' '.join(subcommand)}: {done.stderr}"
        for option in (w for w in command if w.startswith("--")):
            assert option in done.stdout, f"{unit.name}: {option} is not an option of {subcommand}"


def test_the_freeradius_units_accept_the_configuration_ispbill_writes(tmp_path: Path) -> None:
    """The config unit's command writes the directory; the FreeRADIUS unit's check (its
    ExecStartPre) accepts it, dropping to the freerad user it names."""
    freeradius = require(FREERADIUS, "freeradius")
    raddb = tmp_path / "raddb"
    env = {
        **os.environ,
        "ISPBILL_DATABASE_URL": f"sqlite:///{tmp_path / 'ispbill.db'}",
        "ISPBILL_RADIUS_TOKEN": TOKEN,
    }
    subprocess.run([str(ISPBILL), "init"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run(
        [str(ISPBILL), "nas", "add", "edge-1", "--address", "127.0.0.1", "--secret", "s3cret-nas"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    [write] = commands(UNITS / "ispbill-radius-config.service")
    write = [str(ISPBILL) if w == INSTALLED else w.replace(RADDB, str(raddb)) for w in write]
    done = subprocess.run(write, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert (raddb / "clients.conf").stat().st_mode & 0o077 == 0  # the secrets stay root's
    runs = commands(UNITS / "ispbill-radius.service")
    check = [w.replace(RADDB, str(raddb)) for w in runs[0]]
    assert (check[0], "-C" in check) == ("/usr/sbin/freeradius", True)
    check[0] = freeradius
    done = subprocess.run(check, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Loaded virtual server ispbill" in done.stdout


@contextmanager
def served(tmp_path: Path, *options: str, **settings: str) -> Iterator[str]:
    """``ispbill serve`` on SQLite with the RADIUS endpoints on; yields its base URL."""
    database = tmp_path / "serve.db"
    env = {
        **os.environ,
        "ISPBILL_DATABASE_URL": f"sqlite:///{database}",
        "ISPBILL_RADIUS_TOKEN": TOKEN,
        **{f"ISPBILL_{k.upper()}": v for k, v in settings.items()},
    }
    if not database.exists():
        subprocess.run([str(ISPBILL), "init"], env=env, check=True, capture_output=True)
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(ISPBILL), "serve", "--port", str(port), "--no-background", *options],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("ispbill serve did not come up: " + log_path.read_text())
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def refused_source(base: str, forwarded_for: str | None) -> str | None:
    """The address the /radius source check refused for a request relayed for
    ``forwarded_for``, or None when the request got past that check."""
    headers = {"Authorization": "Basic " + base64.b64encode(f"x:{TOKEN}".encode()).decode()}
    if forwarded_for:
        headers |= {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
    answer = httpx.post(f"{base}/radius/authorize", headers=headers, json={}, timeout=30)
    if answer.status_code != 403:
        return None
    found = re.fullmatch(r"source (\S+) is not allowed", str(answer.json()["detail"]))
    assert found is not None, answer.text
    return found.group(1)


def test_serve_believes_forwarded_headers_only_from_trusted_proxies(tmp_path: Path) -> None:
    """The RADIUS allow-list sees the client address uvicorn settles on: the proxy's own
    (127.0.0.1 here) unless the proxy is trusted, then the X-Forwarded-For address."""
    allowed = {"radius_allowed_sources": "203.0.113.7/32"}
    with served(tmp_path, **allowed) as base:  # default: the local proxy (127.0.0.1) is trusted
        seen = [refused_source(base, f) for f in ("203.0.113.7", None, "198.51.100.1")]
    assert seen == [None, "127.0.0.1", "198.51.100.1"]

    with served(tmp_path, "--forwarded-allow-ips", "10.0.0.5", **allowed) as base:
        assert refused_source(base, "203.0.113.7") == "127.0.0.1"

    with served(tmp_path, **allowed, proxy_headers="false") as base:
        assert refused_source(base, "203.0.113.7") == "127.0.0.1"
