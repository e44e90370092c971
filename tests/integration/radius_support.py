"""Shared pieces of the RADIUS tests: a small ISP to authorize, an rlm_rest-speaking client,
and a NAS stand-in built on pyrad that answers CoA / Disconnect requests on UDP loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pyrad import packet
from sqlalchemy import update

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import Service
from ispbill.adapters.radius.coa import dictionary
from ispbill.bootstrap import App
from ispbill.entrypoints.asgi_app import create_app
from ispbill.use_cases.billing.tick import tick
from ispbill.use_cases.catalog import customer_accounts as customer_cases
from ispbill.use_cases.catalog import offerings as catalog
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, plan_id_of
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.service_lifecycle import new_services as services

ACTOR = "test"
TOKEN = "radius-test-token-0123456789"
NAS_SECRET = "nas-secret-123"
GB = 10**9


@dataclass
class World:
    app: App
    customer: int
    service: int
    nas_address: str = "127.0.0.1"


def build_world(
    app: App,
    now: datetime,
    *,
    username: str = "alice",
    password: str = "s3cret%{x}",
    funds: str = "300.00",
    nas_port: int = 3799,
    vendor: str = "mikrotik",
    fup: tuple[str, ...] = ("1GB:throttle:5M/1M", "2GB:suspend"),
    balance_control: str = "prepaid",
    credit_limit: str | None = None,
) -> World:
    """One customer with an active 50M/10M service (plan FUP tiers 1 GB throttle, 2 GB
    suspend), logging in as ``username`` on NAS 127.0.0.1."""
    with app.uow() as uow:
        catalog.add_class(uow, spec=catalog.NewClass(name="Home"), now=now, actor=ACTOR)
    with app.uow() as uow:
        catalog.add_plan(
            uow,
            spec=catalog.NewPlan(
                name="Home 50",
                price="30.00",
                currency="USD",
                download="50M",
                upload="10M",
                fup_tiers=fup,
            ),
            now=now,
            actor=ACTOR,
        )
    terms: dict[str, Any] = {"balance_control": balance_control}
    if balance_control == "prepaid":
        terms["available_funds"] = funds
    else:
        terms["credit_limit"] = credit_limit
    with app.uow() as uow:
        customer = customer_cases.add_customer(
            uow,
            spec=customer_cases.NewCustomer(
                name="Alice",
                customer_class_id=customer_class_id_of(uow, "Home"),
                currency="USD",
                **terms,
            ),
            now=now,
            actor=ACTOR,
        ).id
    with app.uow() as uow:
        service = services.add_service(
            uow,
            spec=services.NewService(customer_id=customer, plan_id=plan_id_of(uow, "Home 50")),
            now=now,
            actor=ACTOR,
        ).id
    tick(app.uow, now=now)
    with app.uow() as uow:
        network.add_nas(
            uow,
            spec=network.NewNas(
                name="edge-1",
                address="127.0.0.1",
                secret=NAS_SECRET,
                coa_port=nas_port,
                vendor=vendor,
            ),
            now=now,
            actor=ACTOR,
        )
    with app.uow() as uow:
        network.set_identity(
            uow,
            spec=network.NewIdentity(service_id=service, username=username, password=password),
            now=now,
            actor=ACTOR,
        )
    return World(app, customer, service)


def force_state(app: App, service: int, state: str, reason: str | None = None) -> None:
    """Put a service in any state and reason directly (authorize only reads the committed
    state); as a use case's event would, mark its precomputed answer (rlm_sql) for rebuild."""
    with app.uow() as uow:
        uow.session.execute(
            update(Service).where(Service.id == service).values(state=state, state_reason=reason)
        )
        uow.mark_answers_stale([service], app.clock.now())
        uow.commit()


def set_setting(app: App, now: datetime, key: str, raw: str) -> None:
    with app.uow() as uow:
        settings_store.set_value(uow, key=key, raw=raw, now=now, actor=ACTOR)


def rlm(**attrs: object) -> dict[str, Any]:
    """An rlm_rest JSON body: each attribute ``{"type": ..., "value": [...]}``."""
    return {
        name.replace("_", "-"): {"type": "string", "value": [str(value)]}
        for name, value in attrs.items()
    }


class RestClient:
    """Calls the /radius endpoints the way rlm_rest does (HTTP Basic with the token)."""

    def __init__(
        self, app: App, *, token: str = TOKEN, client: tuple[str, int] = ("127.0.0.1", 40000)
    ) -> None:
        self.transport = httpx.ASGITransport(app=create_app(app), client=client)
        self.auth = ("freeradius", token)

    def post(self, path: str, body: dict[str, Any], **options: Any) -> httpx.Response:
        return self.post_raw(path, json=body, **options)

    def post_raw(self, path: str, **options: Any) -> httpx.Response:
        """Any body (``content=`` bytes, ``json=``), as rlm_rest would send it."""

        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self.transport, base_url="http://testserver"
            ) as client:
                return await client.post(path, auth=options.pop("auth", self.auth), **options)

        return asyncio.run(send())

    def authorize(self, username: str, **attrs: object) -> httpx.Response:
        return self.post(
            "/radius/authorize", rlm(User_Name=username, NAS_IP_Address="127.0.0.1", **attrs)
        )

    def accounting(self, **attrs: object) -> httpx.Response:
        attrs.setdefault("NAS_IP_Address", "127.0.0.1")
        return self.post("/radius/accounting", rlm(**attrs))


def values(response: httpx.Response) -> dict[str, str]:
    """``reply:Name`` -> first value, from rlm_rest's object form."""
    return {key: item["value"][0] for key, item in response.json().items()}


@dataclass
class Received:
    code: int
    attributes: dict[str, list[Any]]
    at: float


@dataclass
class NasStandIn:
    """A NAS's RFC 5176 listener on 127.0.0.1: verifies each request with the shared secret and
    answers as scripted (``ack``, ``nak`` or ``drop`` for no answer; ack once the script ends)."""

    secret: str = NAS_SECRET
    script: deque[str] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", self.port))
        self._socket.settimeout(0.05)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            request = packet.CoAPacket(packet=data, secret=self.secret.encode(), dict=dictionary())
            if not request.VerifyCoARequest():
                continue  # a wrong secret is dropped silently, like a real NAS
            attributes = {key: request[key] for key in request.keys() if isinstance(key, str)}  # noqa: SIM118
            self.received.append(Received(request.code, attributes, time.monotonic()))
            answer = self.script.popleft() if self.script else "ack"
            if answer == "drop":
                continue
            reply = request.CreateReply()
            if answer == "nak":
                reply.code = (
                    packet.CoANAK if request.code == packet.CoARequest else packet.DisconnectNAK
                )
            self._socket.sendto(reply.ReplyPacket(), peer)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()
