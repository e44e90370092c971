"""Shared by the REST API tests: a synchronous httpx client over the ASGI app, a world with
one token per role (admin, readonly, two resellers, two customer sessions), and a live uvicorn
server in a thread for the fuzzer and the benchmark."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from ispbill.bootstrap import App, bootstrap
from ispbill.clock import Clock
from ispbill.entrypoints.asgi_app import create_app
from ispbill.settings import Settings
from ispbill.use_cases.admin.api_tokens import create_token, open_customer_session
from ispbill.use_cases.catalog.name_lookups import reseller_id_of
from ispbill.use_cases.catalog.offerings import NewClass, add_class, add_reseller

PROBLEM = "application/problem+json"
CARD_SECRET = "k" * 64


def api_app(database_url: str, clock: Clock, *, radius_token: str | None = None) -> App:
    """The application as the API tests run it: refill cards enabled (and the RADIUS
    endpoints, when given their token)."""
    settings = Settings(
        database_url=database_url,
        refill_card_secret=SecretStr(CARD_SECRET),
        radius_token=SecretStr(radius_token) if radius_token else None,
    )
    return bootstrap(settings=settings, clock=clock)


class Api:
    """A synchronous face on ``httpx.AsyncClient`` over ``ASGITransport`` with a bearer token."""

    def __init__(self, app: App, token: str | None) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app))
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        headers = {**self.headers, **options.pop("headers", {})}

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url="http://testserver"
            ) as client:
                return await client.request(method, url, headers=headers, **options)

        return asyncio.run(send())

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def put(self, url: str, **options: Any) -> httpx.Response:
        return self.request("PUT", url, **options)

    def delete(self, url: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", url, **options)


@dataclass
class World:
    """Tokens by role name and the ids of what the tests build on."""

    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


def make_world(app: App) -> World:
    now = app.clock.now()
    world = World()
    with app.uow() as uow:
        add_class(uow, spec=NewClass(name="Residential"), now=now, actor="test")
    for name in ("North", "South"):
        with app.uow() as uow:
            world.ids[name.lower()] = add_reseller(uow, name=name, now=now, actor="test").id
    for name, role, reseller in [
        ("ops", "admin", None),
        ("auditor", "readonly", None),
        ("north", "reseller", "North"),
        ("south", "reseller", "South"),
    ]:
        with app.uow() as uow:
            created = create_token(
                uow,
                name=name,
                role=role,
                reseller_id=reseller_id_of(uow, reseller) if reseller else None,
                now=now,
                actor="test",
            )
            world.tokens[name] = created.plaintext
    return world


def open_session(app: App, world: World, name: str, customer_id: int) -> None:
    with app.uow() as uow:
        created = open_customer_session(
            uow,
            customer_id=customer_id,
            lifetime=timedelta(hours=1),
            now=app.clock.now(),
            actor="t",
        )
    world.tokens[name] = created.plaintext


def customer_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "customer_class": "Residential", "currency": "USD", **extra}


PLAN = {"name": "Fiber 50", "price": "30.00", "currency": "USD", "download": "50M", "upload": "10M"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: App, **config: Any) -> Iterator[str]:
    """The app served by uvicorn on a free local port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning", **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
