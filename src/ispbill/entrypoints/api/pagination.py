"""Cursor pagination shared by every list of the API (keyset on the row id, never OFFSET).

A page is ``{"items": [...], "next_cursor": "..."}``; passing ``?cursor=`` returns the rows after
the last one seen, in the list's own order (oldest first, or newest first for histories such as
events and the ledger). The cursor is opaque (base64 of the direction and the last id), so a
page stays correct while rows are added, and costs one index range scan however deep it is.
Filters are each list's own query parameters; they are applied before the cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.errors import ApiProblem

T = TypeVar("T")
MAX_LIMIT = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


@dataclass(frozen=True)
class PageRequest:
    cursor: str | None
    limit: int


def page_request(
    cursor: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="The next_cursor of the previous page."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")] = 50,
) -> PageRequest:
    return PageRequest(cursor, limit)


Paging = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(last_id: int, *, newest_first: bool = False) -> str:
    text = f"{'d' if newest_first else 'c'}:{last_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, newest_first: bool = False) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    wanted = "d" if newest_first else "c"
    if prefix != wanted or not number.isascii() or not number.isdigit() or int(number) > MAX_ID:
        raise ApiProblem(422, "cursor: not a cursor this list gave", field="cursor", rule="invalid")
    return int(number)


def paginate(
    session: Session,
    query: Any,
    id_column: Any,
    request: PageRequest,
    shape: Callable[[Sequence[Any]], list[T]],
    *,
    newest_first: bool = False,
    scalars: bool = True,
    row_id: Callable[[Any], int] | None = None,
) -> Page[T]:
    """One page of ``query`` ordered by ``id_column``, shaped by ``shape`` (which may load
    what the page's rows need in one more query, e.g. their balances)."""
    if request.cursor:
        after = decode_cursor(request.cursor, newest_first=newest_first)
        query = query.where(id_column < after if newest_first else id_column > after)
    query = query.order_by(id_column.desc() if newest_first else id_column.asc())
    query = query.limit(request.limit + 1)
    rows: list[Any] = list(session.scalars(query) if scalars else session.execute(query))
    more = len(rows) > request.limit
    rows = rows[: request.limit]
    last = (row_id(rows[-1]) if row_id else rows[-1].id) if rows else 0
    return Page[T](
        items=shape(rows),
        next_cursor=encode_cursor(last, newest_first=newest_first) if more and rows else None,
    )
