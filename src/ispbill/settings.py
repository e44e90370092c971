"""Operator settings from the environment (``ISPBILL_*``) with safe embedded defaults."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ISPBILL_", extra="ignore")

    database_url: str = "sqlite:///ispbill.db"
    default_timezone: str = "UTC"
    default_locale: str = "en_US"
    default_currency: str = "USD"
