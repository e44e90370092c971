"""The FreeRADIUS 3.2 configuration ispbill ships: a self-contained configuration directory.

``write_config`` renders ``templates/radius/``: radiusd.conf (logs and run files inside the
directory, no proxying), clients.conf from the NAS table, the rest module pointing at ispbill
with the token and the pool settings that keep FreeRADIUS usable while ispbill restarts
(``start = 0``, ``retry_delay = 1``; FREERADIUS-NOTES pitfall 2), the PAP/CHAP/MS-CHAP modules
and the ``ispbill`` virtual server. It does not touch /etc/freeradius; Debian's packaged
service can be pointed at it, or it runs as ``freeradius -f -d DIR``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.engine import make_url

from ispbill.domain.errors import ValidationError

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,200}")


@dataclass(frozen=True)
class NasClient:
    name: str
    address: str
    secret: str
    require_message_authenticator: bool


@dataclass(frozen=True)
class SqlTarget:
    """Where rlm_sql reads the precomputed answers: ispbill's own database."""

    dialect: str  # postgresql or sqlite
    database: str
    filename: str = ""
    server: str = "127.0.0.1"
    port: int = 5432
    login: str = "postgres"
    password: str = ""

    @classmethod
    def from_url(cls, url: str) -> SqlTarget:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if not parsed.database or parsed.database == ":memory:":
                raise ValidationError("database_url", "rlm_sql needs a SQLite file")
            path = str(Path(parsed.database).resolve())
            return cls("sqlite", database=path, filename=path)
        if backend != "postgresql":
            raise ValidationError("database_url", "rlm_sql reads PostgreSQL or SQLite only")
        for name, value in (("login", parsed.username or ""), ("password", parsed.password or "")):
            if '"' in str(value) or "\\" in str(value):
                raise ValidationError("database_url", f"the {name} must not contain quotes")
        return cls(
            "postgresql",
            database=parsed.database or "postgres",
            server=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            login=parsed.username or "postgres",
            password=str(parsed.password or ""),
        )


@dataclass(frozen=True)
class RadiusConfig:
    out: Path
    api_url: str
    token: str
    clients: Sequence[NasClient]
    listen: str = "*"
    auth_port: int = 1812
    acct_port: int = 1813
    reject_delay: int = 1
    max_servers: int = 32
    run_as: str | None = None
    authorize: str = "rest"  # or "sql": precomputed answers first, rlm_rest for the rest
    sql: SqlTarget | None = None


def write_config(config: RadiusConfig) -> list[Path]:
    """Write the configuration directory; returns the files written."""
    if not TOKEN_PATTERN.fullmatch(config.token):
        raise ValidationError(
            "radius_token", "must be 16 to 200 characters of letters, digits, '.', '_', '~', '-'"
        )
    if not config.api_url.startswith(("http://", "https://")):
        raise ValidationError("api_url", "must start with http:// or https://")
    for name, port in (("auth_port", config.auth_port), ("acct_port", config.acct_port)):
        if not 1 <= port <= 65535:
            raise ValidationError(name, "must be between 1 and 65535")
    if config.authorize not in ("rest", "sql"):
        raise ValidationError("authorize", "must be rest or sql")
    if config.authorize == "sql" and config.sql is None:
        raise ValidationError("authorize", "sql needs the database to read")
    if not 0 <= config.reject_delay <= 5:
        raise ValidationError("reject_delay", "must be between 0 and 5 seconds")
    out = config.out.resolve()
    files = {
        "radiusd.conf": "radiusd.conf.j2",
        "clients.conf": "clients.conf.j2",
        "dictionary": "dictionary.j2",
        "mods-enabled/rest": "rest.j2",
        "mods-enabled/auth": "auth_modules.j2",
        "sites-enabled/ispbill": "site.j2",
    }
    if config.authorize == "sql":
        files["mods-enabled/sql"] = "sql.j2"
    env = Environment(
        loader=PackageLoader("ispbill", "templates/radius"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # FreeRADIUS configuration, not HTML
    )
    env.filters["client_name"] = _client_name
    values = {
        "generated_for": config.api_url,
        "confdir": out,
        "logdir": out / "log",
        "rundir": out / "run",
        "api_url": config.api_url.rstrip("/"),
        "token": config.token,
        "nas_rows": config.clients,
        "listen": config.listen,
        "auth_port": config.auth_port,
        "acct_port": config.acct_port,
        "reject_delay": config.reject_delay,
        "max_servers": config.max_servers,
        "run_as": config.run_as,
        "authorize": config.authorize,
        "sql": config.sql,
    }
    written = []
    for name in ("log", "run", "mods-enabled", "sites-enabled", "mods-config"):
        (out / name).mkdir(parents=True, exist_ok=True)
    for target, template in files.items():
        path = out / target
        path.write_text(env.get_template(template).render(**values))
        if target in ("clients.conf", "mods-enabled/rest", "mods-enabled/sql"):
            path.chmod(0o600)  # secrets and the API token
        written.append(path)
    return written


def _client_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return cleaned or "nas"
