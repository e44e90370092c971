"""The authorization matrix: every role against every endpoint family, on both databases.

Roles: admin, readonly, the reseller that owns the target customer (``north``), another
reseller (``south``), the target customer's own portal session (``portal``) and another
customer's session (``stranger``). The target is north's postpaid customer with a service,
an invoice and a payment. A refusal is a 403 for what a role may never do and a 404 for an
object outside its reach, with a body that does not reveal whether the object exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from api_support import PLAN, PROBLEM, Api, api_app, customer_body, make_world, open_session
from notification_support import REFUSED, queue, send_due

from ispbill.bootstrap import App
from ispbill.clock import FixedClock
from scenarios.helpers import check_books

ROLES = ("admin", "readonly", "north", "south", "portal", "stranger")
TOKEN_OF = {
    "admin": "ops",
    "readonly": "auditor",
    "north": "north",
    "south": "south",
    "portal": "portal",
    "stranger": "stranger",
}


@dataclass(frozen=True)
class Case:
    family: str
    method: str
    url: str
    expected: tuple[int, int, int, int, int, int]  # in ROLES order
    body: Callable[[str], Any] | None = None


def same_for_owners(ok: int) -> tuple[int, int, int, int, int, int]:
    """Readable by the owner's chain: admin, readonly, north and the customer itself."""
    return (ok, ok, ok, 404, ok, 404)


@pytest.fixture
def matrix_app(database_url: str, clock: FixedClock) -> Any:
    app = api_app(database_url, clock)
    try:
        yield app
    finally:
        app.close()


def build(app: App) -> tuple[dict[str, str], dict[str, int]]:
    world = make_world(app)
    admin = Api(app, world.tokens["ops"])
    north = Api(app, world.tokens["north"])
    south = Api(app, world.tokens["south"])
    plan = admin.post("/api/v1/plans", json=PLAN).json()["id"]
    postpaid = {"balance_control": "postpaid", "credit_limit": "100.00"}
    target = north.post("/api/v1/customers", json=customer_body("N1", **postpaid)).json()["id"]
    other = south.post("/api/v1/customers", json=customer_body("S1", **postpaid)).json()["id"]
    service = north.post("/api/v1/services", json={"customer_id": target, "plan_id": plan})
    south.post("/api/v1/services", json={"customer_id": other, "plan_id": plan})
    assert admin.post("/api/v1/ticks/run", json={}).status_code == 200
    invoice = admin.get("/api/v1/invoices", params={"customer_id": target}).json()["items"][0]
    payment = north.post(
        "/api/v1/payments",
        json={"customer_id": target, "amount": "5.00", "currency": "USD"},
        headers={"Idempotency-Key": "setup"},
    ).json()
    nas = admin.post(
        "/api/v1/nas", json={"name": "edge", "address": "10.9.9.9", "secret": "s" * 16}
    )
    failed = queue(app, target, REFUSED, "authz")
    send_due(app)  # the relay refuses the address: the message fails, an admin may retry it
    open_session(app, world, "portal", target)
    open_session(app, world, "stranger", other)
    ids = {
        "customer": target,
        "service": service.json()["id"],
        "invoice": invoice["id"],
        "payment": payment["id"],
        "north": world.ids["north"],
        "nas": nas.json()["id"],
        "notification": failed,
        "plan": plan,
    }
    return world.tokens, ids


def cases(ids: dict[str, int]) -> list[Case]:
    c, s, i, p = ids["customer"], ids["service"], ids["invoice"], ids["payment"]
    forbidden_to_all_but_admin = (201, 403, 403, 403, 403, 403)
    operator_only = (200, 200, 403, 403, 403, 403)
    staff = (200, 200, 200, 200, 403, 403)
    everyone = (200,) * 6
    return [
        Case("customers", "GET", "/api/v1/customers", staff),
        Case("customers", "GET", f"/api/v1/customers/{c}", same_for_owners(200)),
        Case(
            "customers",
            "POST",
            "/api/v1/customers",
            (201, 403, 201, 201, 403, 403),
            lambda role: customer_body(f"new-{role}"),
        ),
        Case(  # issue 17: edits follow the customer's owner; the catalogue is the admin's
            "customer edits",
            "PATCH",
            f"/api/v1/customers/{c}",
            (200, 403, 200, 404, 403, 403),
            lambda role: {"locale": "cs_CZ"},
        ),
        Case(
            "charge and invoice",
            "POST",
            f"/api/v1/customers/{c}/charge",
            (200, 403, 200, 404, 403, 403),
        ),
        Case(
            "plan edits",
            "PATCH",
            f"/api/v1/plans/{ids['plan']}",
            (200, 403, 403, 403, 403, 403),
            lambda role: {"name": f"Fiber {role}"},
        ),
        Case(
            "nas edits",
            "PATCH",
            f"/api/v1/nas/{ids['nas']}",
            (200, 403, 403, 403, 403, 403),
            lambda role: {"coa_port": 1700},
        ),
        Case("wallets", "GET", f"/api/v1/customers/{c}/wallet", same_for_owners(200)),
        Case("ledger", "GET", f"/api/v1/customers/{c}/ledger", same_for_owners(200)),
        Case("preview", "GET", f"/api/v1/customers/{c}/preview", same_for_owners(200)),
        Case("services", "GET", "/api/v1/services", everyone),
        Case("services", "GET", f"/api/v1/services/{s}", same_for_owners(200)),
        Case(
            "services",
            "POST",
            f"/api/v1/services/{s}/active-to",
            (200, 403, 200, 404, 403, 403),
            lambda role: {"active_to": None},
        ),
        Case(
            "services",
            "POST",
            f"/api/v1/services/{s}/reactivate",
            (422, 403, 422, 404, 422, 404),
            lambda role: {},
        ),
        Case(
            "network identity",
            "PUT",
            f"/api/v1/services/{s}/network-identity",
            (200, 403, 200, 404, 403, 403),
            lambda role: {"username": f"user-{role}", "password": "pppoe-pass"},
        ),
        Case(
            "network identity",
            "GET",
            f"/api/v1/services/{s}/network-identity",
            (200, 200, 200, 404, 403, 403),
        ),
        Case("nas", "GET", "/api/v1/nas", operator_only),
        Case("nas", "GET", f"/api/v1/nas/{ids['nas']}", operator_only),
        Case(
            "nas",
            "POST",
            "/api/v1/nas",
            forbidden_to_all_but_admin,
            lambda role: {
                "name": f"nas-{role}",
                "address": f"10.0.0.{ROLES.index(role) + 1}",
                "secret": "shared-secret",
            },
        ),
        Case("invoices", "GET", "/api/v1/invoices", everyone),
        Case("invoices", "GET", f"/api/v1/invoices/{i}", same_for_owners(200)),
        Case("invoices", "GET", f"/api/v1/invoices/{i}/pdf", same_for_owners(200)),
        Case("credit notes", "GET", "/api/v1/credit-notes", everyone),
        Case("payments", "GET", "/api/v1/payments", everyone),
        Case("payments", "GET", f"/api/v1/payments/{p}", same_for_owners(200)),
        Case(
            "payments",
            "POST",
            "/api/v1/payments",
            (201, 403, 201, 404, 403, 403),
            lambda role: {"customer_id": c, "amount": "1.00", "currency": "USD"},
        ),
        Case(
            "refunds",
            "POST",
            "/api/v1/refunds",
            (422, 403, 422, 404, 403, 403),
            lambda role: {"customer_id": c, "amount": "9999.00", "reference": f"r-{role}"},
        ),
        Case("events", "GET", f"/api/v1/events?customer_id={c}", same_for_owners(200)),
        Case("top-up rules", "GET", f"/api/v1/top-up-rules?customer_id={c}", same_for_owners(200)),
        Case(
            "top-up rules",
            "PUT",
            "/api/v1/top-up-rules",
            (200, 403, 200, 404, 403, 403),
            lambda role: {"customer_id": c, "threshold": "5", "amount": "20", "method": "pm_1"},
        ),
        Case(
            "refill cards",
            "POST",
            "/api/v1/refill-cards/redeem",
            (422, 403, 422, 404, 422, 404),
            lambda role: {"code": "AAAA-AAAA-AAAA-AAAA", "customer_id": c},
        ),
        Case("refill cards", "GET", "/api/v1/refill-cards", operator_only),
        Case("refill cards", "GET", "/api/v1/refill-cards/liability", operator_only),
        Case(
            "refill cards",
            "POST",
            "/api/v1/refill-card-batches",
            forbidden_to_all_but_admin,
            lambda role: {"count": 1, "value": "5", "currency": "USD"},
        ),
        Case("plans", "GET", "/api/v1/plans", everyone),
        Case(
            "plans",
            "POST",
            "/api/v1/plans",
            forbidden_to_all_but_admin,
            lambda role: {**PLAN, "name": f"Plan {role}"},
        ),
        Case("resellers", "GET", "/api/v1/resellers", staff),
        Case(
            "resellers", "GET", f"/api/v1/resellers/{ids['north']}", (200, 200, 200, 404, 403, 403)
        ),
        Case(
            "resellers",
            "POST",
            "/api/v1/resellers",
            forbidden_to_all_but_admin,
            lambda role: {"name": f"R {role}"},
        ),
        Case("customer classes", "GET", "/api/v1/customer-classes", staff),
        Case(
            "customer classes",
            "POST",
            "/api/v1/customer-classes",
            forbidden_to_all_but_admin,
            lambda role: {"name": f"K {role}"},
        ),
        Case("tax profiles", "GET", "/api/v1/tax-profiles", staff),
        Case(
            "tax profiles",
            "POST",
            "/api/v1/tax-profiles",
            forbidden_to_all_but_admin,
            lambda role: {"name": f"T {role}", "rate": "21"},
        ),
        Case("bank statements", "GET", "/api/v1/bank-statements/lines", operator_only),
        Case("settings", "GET", "/api/v1/settings", operator_only),
        Case(
            "settings",
            "PUT",
            "/api/v1/settings/seller_name",
            (200, 403, 403, 403, 403, 403),
            lambda role: {"value": f"ISP {role}"},
        ),
        Case("ticks", "POST", "/api/v1/ticks/run", (200, 403, 403, 403, 403, 403), lambda role: {}),
        Case(
            "sessions",
            "POST",
            "/api/v1/sessions",
            (201, 403, 201, 404, 403, 403),
            lambda role: {"customer_id": c},
        ),
        Case("sessions", "GET", "/api/v1/whoami", everyone),
        Case("collections", "GET", f"/api/v1/services/{s}/why", same_for_owners(200)),
        Case(
            "collections",
            "POST",
            f"/api/v1/services/{s}/suspend",
            (422, 403, 422, 404, 403, 403),
            lambda role: {"reason": "no_such_reason"},
        ),
        Case(
            "collections",
            "POST",
            f"/api/v1/services/{s}/lift",
            (422, 403, 422, 404, 403, 403),
            lambda role: {},
        ),
        Case(
            "collections",
            "POST",
            f"/api/v1/services/{s}/promise",
            (422, 403, 422, 404, 422, 404),
            lambda role: {"days": 3},
        ),
        Case("collection policy", "GET", "/api/v1/collection/policy", staff),
        Case(
            "collection policy",
            "PUT",
            "/api/v1/collection/policy",
            (422, 403, 403, 403, 403, 403),
            lambda role: {"changes": {}},
        ),
        Case("info pages", "GET", "/api/v1/pages", everyone),
        Case("notifications", "GET", "/api/v1/notifications", staff),
        Case(
            "notifications",
            "GET",
            f"/api/v1/notifications?customer_id={c}",
            (200, 200, 200, 404, 403, 403),
        ),
        Case(
            "notifications",
            "POST",
            f"/api/v1/notifications/{ids['notification']}/retry",
            (200, 403, 403, 404, 403, 403),
            lambda role: {"reason": "address fixed"},
        ),
    ]


def test_authorization_matrix(matrix_app: App) -> None:
    tokens, ids = build(matrix_app)
    clients = {role: Api(matrix_app, tokens[TOKEN_OF[role]]) for role in ROLES}
    anonymous = Api(matrix_app, None)
    wrong: list[str] = []
    families = set()
    for case in cases(ids):
        families.add(case.family)
        for role, expected in zip(ROLES, case.expected, strict=True):
            options: dict[str, Any] = {"headers": {"Idempotency-Key": f"{role}-{case.url}"}}
            if case.body is not None:
                options["json"] = case.body(role)
            response = clients[role].request(case.method, case.url, **options)
            if response.status_code != expected:
                wrong.append(
                    f"{role} {case.method} {case.url}: {response.status_code} (expected "
                    f"{expected}) {response.text[:200]}"
                )
            elif expected in (403, 404) and response.headers["content-type"] != PROBLEM:
                wrong.append(f"{role} {case.method} {case.url}: refusal is not problem+json")
        unauthenticated = anonymous.request(case.method, case.url)
        if unauthenticated.status_code != 401:
            wrong.append(f"anonymous {case.method} {case.url}: {unauthenticated.status_code}")
    assert not wrong, "\n".join(wrong)
    assert len(families) >= 20
    check_books(matrix_app)


@pytest.mark.parametrize("role", ["south", "stranger"])
def test_a_refusal_does_not_tell_absent_from_hidden(matrix_app: App, role: str) -> None:
    tokens, ids = build(matrix_app)
    caller = Api(matrix_app, tokens[TOKEN_OF[role]])
    for family, key in [
        ("customers", "customer"),
        ("invoices", "invoice"),
        ("payments", "payment"),
    ]:
        hidden = caller.get(f"/api/v1/{family}/{ids[key]}")
        absent = caller.get(f"/api/v1/{family}/999999")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == {
            **absent.json(),
            "detail": absent.json()["detail"].replace("999999", str(ids[key])),
        }


def test_api_tokens_do_not_open_the_radius_endpoints(database_url: str, clock: FixedClock) -> None:
    """The rlm_rest endpoints (``/radius/*``, outside ``/api/v1`` and its contract) answer only
    FreeRADIUS's own token: no API role, not even admin, reaches them with its bearer token."""
    app = api_app(database_url, clock, radius_token="r" * 40)
    try:
        tokens, _ids = build(app)
        attributes = {"User-Name": {"type": "string", "value": ["nobody"]}}
        for role in ROLES:
            caller = Api(app, tokens[TOKEN_OF[role]])
            refused = caller.post("/radius/authorize", json=attributes)
            assert refused.status_code == 403, (role, refused.text)
        radius = Api(app, "r" * 40)
        answered = radius.post("/radius/authorize", json=attributes)
        assert answered.status_code in (200, 401), answered.text  # a subscriber decision
    finally:
        app.close()
