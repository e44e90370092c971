"""The web pages: the console (``/console``), the customer portal (``/portal``), the walled
garden (``/garden``), the sandbox gateway's checkout (``/sandbox``) and their shared parts.

Server-rendered: Jinja2 templates, one stylesheet, htmx (vendored under ``static/``) only for
small enhancements; every page reads without JavaScript. Routes are thin: they parse the form,
call the same use cases as the CLI and the API (``ispbill.use_cases``), read through the read
models (``ispbill.use_cases.queries``) and render the answer.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web import console, garden, portal, sandbox
from ispbill.entrypoints.web.common import install_error_pages
from ispbill.entrypoints.web.session import SignInRequired


def include_web(api: FastAPI) -> None:
    """Mount the pages and the static files on the application."""
    api.include_router(sandbox.router)
    api.include_router(garden.router)
    api.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="web-static")
    api.include_router(console.router)
    api.include_router(portal.router)
    install_error_pages(api)

    @api.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return redirect(request, exc.login_url)
