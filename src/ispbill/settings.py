"""Operator settings from the environment (``ISPBILL_*``) with safe embedded defaults."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ISPBILL_", extra="ignore")

    database_url: str = "sqlite:///ispbill.db"
    default_timezone: str = "UTC"
    default_locale: str = "en_US"
    default_currency: str = "USD"
    # Database connections the tick's set-based fast path uses side by side (PostgreSQL): the
    # charging statements are the database's work, so one per core the database may use.
    tick_workers: int = Field(default=2, ge=1, le=64)
    # Keys the HMAC under which refill-card codes are stored (domain/refill.py). Kept out of
    # the database on purpose: a stolen database or backup alone then reveals no code.
    refill_card_secret: SecretStr | None = None
    # Where customers reach ispbill: hosted sandbox checkout pages and gateway return URLs.
    public_base_url: str = "http://127.0.0.1:8080"
    # Payment gateways run only when configured. The sandbox credits wallets with pretend money,
    # so it is off unless its webhook-signing secret is set (demos and tests), never by default.
    sandbox_secret: SecretStr | None = None
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # ``ispbill serve``: where the HTTP server listens and how many worker processes it runs.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_workers: int = 1
    # How long an Idempotency-Key's first answer is kept for replays (Stripe keeps 24 h).
    idempotency_ttl_hours: int = 24
    # A token's ``last_used_at`` is written at most this often, not on every request (a write
    # per read would serialise every API call on the token row).
    token_touch_seconds: int = 300
    # How long a customer's portal session token lives.
    customer_session_minutes: int = 60 * 12
    # Signs the walled-garden links that match a suspended subscriber to its service
    # (services/garden.py); without it the info pages are served to no one.
    garden_secret: SecretStr | None = None
