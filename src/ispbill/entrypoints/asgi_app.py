"""The whole ispbill application: the API (``api/``) and the web pages (``web/``) around one
bootstrapped ``App``. It lives beside both, since they do not import each other.

``uvicorn ispbill.entrypoints.asgi_app:application --factory`` builds it from the environment
(``ISPBILL_*``) with the system clock. ``ispbill serve --workers N`` uses it, since each worker
process must build its own application (and database pool) after the fork. It serves HTTP
only: with several workers, run ``ispbill worker`` beside it for the background work.
"""

from __future__ import annotations

from fastapi import FastAPI

from ispbill.bootstrap import App, bootstrap
from ispbill.entrypoints.api.app import create_api
from ispbill.entrypoints.web import include_web


def create_app(app_container: App) -> FastAPI:
    """The API with the console, the portal, the walled garden and the sandbox checkout."""
    api = create_api(app_container)
    include_web(api)
    return api


def application() -> FastAPI:
    return create_app(bootstrap())
