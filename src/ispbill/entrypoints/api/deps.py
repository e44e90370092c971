"""What routes need from the running application."""

from __future__ import annotations

from fastapi import Request

from ispbill.bootstrap import App


def container(request: Request) -> App:
    """The bootstrapped application a request is served by (set by ``create_app``)."""
    app_container = request.app.state.container
    assert isinstance(app_container, App)
    return app_container
