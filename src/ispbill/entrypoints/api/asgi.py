"""``uvicorn ispbill.entrypoints.api.asgi:application --factory``: the web application built
from the environment (``ISPBILL_*``) with the system clock. ``ispbill serve --workers N`` uses
it, since each worker process must build its own application (and database pool) after the
fork. It serves HTTP only: with several workers, run ``ispbill outbox run`` beside it."""

from __future__ import annotations

from fastapi import FastAPI

from ispbill.bootstrap import bootstrap
from ispbill.entrypoints.api.app import create_app


def application() -> FastAPI:
    return create_app(bootstrap())
