"""The ispbill API: ``create_api`` builds it around a bootstrapped ``App`` (the whole
application, with the web pages, is ``entrypoints/asgi_app.create_app``).

Routers live in ``routes/`` (one per capability) so the API grows by adding files. The routes
are thin: they read the request, call one use case in a worker thread (the use cases are
synchronous and open their own unit of work) and shape the answer.
"""

from __future__ import annotations

from fastapi import FastAPI

from ispbill import __version__
from ispbill.bootstrap import App
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.api.inputs import InputGuardMiddleware
from ispbill.entrypoints.api.problems import handle_domain_error
from ispbill.entrypoints.api.routes import radius, webhooks
from ispbill.entrypoints.api.v1 import include_v1


def create_api(app_container: App) -> FastAPI:
    api = FastAPI(
        title="ispbill",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    api.state.container = app_container
    api.add_exception_handler(IspbillError, handle_domain_error)
    api.include_router(webhooks.router)
    api.add_exception_handler(radius.Refused, radius.handle_refused)
    api.include_router(radius.router)  # FreeRADIUS rlm_rest, outside /api/v1
    include_v1(api, app_container)
    api.add_middleware(InputGuardMiddleware)  # outermost: before any route reads the request
    return api
