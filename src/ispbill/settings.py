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
    # rlm_rest (FreeRADIUS) endpoints under /radius: off until a token is set. FreeRADIUS sends
    # it as HTTP Basic password (the generated rest module does); only these sources may call.
    radius_token: SecretStr | None = None
    radius_allowed_sources: str = "127.0.0.1/32,::1/128"
    # operator settings behind the RADIUS answer are re-read at most this often per process
    radius_policy_ttl_seconds: float = 2.0
    # ``ispbill serve``: where the HTTP server listens and how many worker processes it runs.
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_workers: int = 1
    # CoA delivery (use_cases/network/enforcement.py): at most this many commands in flight to
    # one NAS across every sender; retries double from the base delay up to the cap; after the
    # last attempt a command is a dead letter an operator retries.
    coa_per_nas_limit: int = Field(default=4, ge=1, le=1000)
    coa_retry_base_seconds: float = Field(default=1.0, gt=0)
    coa_retry_max_seconds: float = Field(default=300.0, gt=0)
    coa_max_attempts: int = Field(default=8, ge=1, le=100)
    # Retention (use_cases/admin/retention.py, `ispbill purge`): failed sign-in and redemption
    # attempts, sessions and sign-in links past expiry, idempotency records and delivered
    # outbox rows are deleted after these ages; money and events never are.
    retention_login_attempt_days: int = Field(default=90, ge=1)
    retention_session_days_after_expiry: int = Field(default=7, ge=1)
    retention_idempotency_days: int = Field(default=30, ge=1)
    retention_delivered_outbox_days: int = Field(default=30, ge=1)
    # How long an Idempotency-Key's first answer is kept for replays (Stripe keeps 24 h).
    idempotency_ttl_hours: int = 24
    # A token's ``last_used_at`` is written at most this often, not on every request (a write
    # per read would serialise every API call on the token row).
    token_touch_seconds: int = 300
    # How long a customer's portal session token lives.
    customer_session_minutes: int = 60 * 12
    # Signs the walled-garden links that match a suspended subscriber to its service
    # (use_cases/collections/walled_garden.py); without it the info pages are served to no one.
    garden_secret: SecretStr | None = None
    # The web console and portal (entrypoints/web). Cookies are sent only over HTTPS unless
    # cookie_secure is off (a plain-HTTP test rig); browsers treat http://127.0.0.1 as secure.
    cookie_secure: bool = True
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # Outgoing mail (portal sign-in links): plain SMTP to a relay; STARTTLS when asked.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "ispbill@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
