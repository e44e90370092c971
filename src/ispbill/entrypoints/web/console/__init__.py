"""The operator console (``/console``), one module per resource; ``router`` holds them all.

The modules are included in this order, and the order matters where two paths could match the
same URL (``/customers/new`` before ``/customers/{customer_id}``, both in ``customers``;
``bulk``'s ``/customers/bulk`` before both).
Shared helpers (a console page, a job in a unit of work, the reader's scope) are in
``web/common.py``; the customer page's own (showing it, acting on it) in ``customers``.
"""

from __future__ import annotations

from fastapi import APIRouter

from ispbill.entrypoints.web.console import (
    bank,
    bulk,
    cards,
    classes,
    collections,
    corrections,
    customer_edit,
    customers,
    dashboard,
    discounts,
    extra_charges,
    invoices,
    lists,
    nas,
    outbox,
    payments,
    plan_prices,
    plans,
    resellers,
    schedule,
    services,
    settings,
    sign_in,
    taxes,
    tokens,
    top_ups,
)

MODULES = (
    sign_in,
    dashboard,
    bulk,
    customers,
    customer_edit,
    services,
    extra_charges,
    discounts,
    corrections,
    payments,
    top_ups,
    collections,
    invoices,
    plans,
    plan_prices,
    classes,
    nas,
    outbox,
    settings,
    schedule,
    taxes,
    resellers,
    tokens,
    bank,
    lists,
    cards,
)
router = APIRouter()
for _module in MODULES:
    router.include_router(_module.router)
