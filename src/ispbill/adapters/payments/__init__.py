"""Payment gateways: the interface (``gateway.py``) and its sandbox and Stripe implementations.

``build_gateways`` is what the bootstrap calls: a gateway is present only when its settings
are, so an install without payment settings simply has no gateway, and the sandbox (which
credits pretend money) never runs unless its secret was set on purpose. The ``stripe`` library
is imported only when Stripe is configured (it adds half a second to every command's start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ispbill.adapters.payments.gateway import PaymentGateway
from ispbill.adapters.payments.sandbox import SandboxGateway
from ispbill.clock import Clock
from ispbill.settings import Settings

if TYPE_CHECKING:
    from stripe import HTTPClient


def build_gateways(
    settings: Settings, clock: Clock, *, stripe_http_client: HTTPClient | None = None
) -> dict[str, PaymentGateway]:
    gateways: dict[str, PaymentGateway] = {}
    if settings.sandbox_secret is not None and settings.sandbox_secret.get_secret_value().strip():
        gateways["sandbox"] = SandboxGateway(
            secret=settings.sandbox_secret.get_secret_value(),
            clock=clock,
            base_url=settings.public_base_url,
        )
    if settings.stripe_api_key is not None and settings.stripe_webhook_secret is not None:
        # the stripe package takes ~0.6 s to import (measured): only when Stripe is configured
        from ispbill.adapters.payments.stripe_gateway import StripeGateway  # noqa: PLC0415

        gateways["stripe"] = StripeGateway(
            api_key=settings.stripe_api_key.get_secret_value(),
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
            clock=clock,
            http_client=stripe_http_client,
        )
    return gateways
