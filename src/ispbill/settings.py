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
    # Signs the walled-garden links that match a suspended subscriber to its service
    # (services/garden.py); without it the info pages are served to no one.
    garden_secret: SecretStr | None = None
