"""Cursor pagination shared by every list of the API (keyset on the row id, never OFFSET).

A page is ``{"items": [...], "next_cursor": "..."}``; passing ``?cursor=`` returns the rows after
the last one seen, in the list's own order (oldest first, or newest first for histories such as
events and the ledger). The cursor is opaque (base64 of the direction and the last id), so a
page stays correct while rows are added, and costs one index range scan however deep it is.
Filters are each list's own query parameters; they are applied before the cursor. The SQL is
the read models' (``use_cases/queries/``, over ``adapters/db/keyset.py``); this module only
turns the cursor into the id a page starts beyond, and a slice back into a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from ispbill.adapters.db.keyset import Slice
from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.errors import ApiProblem

T = TypeVar("T")
R = TypeVar("R")
MAX_LIMIT = 200
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at end.")


@dataclass(frozen=True)
class PageRequest:
    cursor: str | None
    limit: int

    def after(self, *, newest_first: bool = False) -> int | None:
        """The id the page starts beyond (a 422 for a cursor this list did not give)."""
        return decode_cursor(self.cursor, newest_first=newest_first) if self.cursor else None


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


def page_of(found: Slice[R], shape: Callable[[R], T], *, newest_first: bool = False) -> Page[T]:
    """A read model's slice as a page: each row shaped, and the cursor of the next page."""
    return Page[T](
        items=[shape(row) for row in found.rows],
        next_cursor=(
            encode_cursor(found.last_id, newest_first=newest_first)
            if found.last_id is not None
            else None
        ),
    )
