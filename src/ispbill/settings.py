"""Operator settings from the environment (``ISPBILL_*``) with safe embedded defaults."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ISPBILL_", extra="ignore")

    database_url: str = "sqlite:///ispbill.db"
    default_timezone: str = "UTC"
    default_locale: str = "en_US"
    default_currency: str = "USD"
    # Keys the HMAC under which refill-card codes are stored (domain/refill.py). Kept out of
    # the database on purpose: a stolen database or backup alone then reveals no code.
    refill_card_secret: SecretStr | None = None
