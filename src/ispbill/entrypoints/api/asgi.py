"""An ASGI factory for running ispbill's web application under uvicorn with several worker
processes (``uvicorn --factory ispbill.entrypoints.api.asgi:create --workers 2``): each worker
bootstraps its own application (database pool, clock) from the ``ISPBILL_*`` environment.
``ispbill serve`` runs one process with the outbox worker beside it; this serves HTTP only (run
``ispbill outbox run`` separately)."""

from __future__ import annotations

from fastapi import FastAPI

from ispbill.bootstrap import bootstrap
from ispbill.entrypoints.api.app import create_app


def create() -> FastAPI:
    return create_app(bootstrap())
