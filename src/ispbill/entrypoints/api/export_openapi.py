"""Print the API's OpenAPI document: ``python -m ispbill.entrypoints.api.export_openapi >
docs/openapi.json``. No database is opened (an in-memory SQLite URL is never connected)."""

from __future__ import annotations

import json
from typing import Any

from ispbill.bootstrap import bootstrap
from ispbill.entrypoints.api.app import create_api
from ispbill.settings import Settings


def openapi_document() -> dict[str, Any]:
    app = bootstrap(settings=Settings(database_url="sqlite://"))
    try:
        return create_api(app).openapi()
    finally:
        app.close()


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    print(render(), end="")


if __name__ == "__main__":
    main()
