"""Keyset pagination in SQL: the rows after a known id, in id order, never OFFSET.

The read models (``use_cases/queries/``) build a list's filtered query and ask for one slice of
it here; the caller (the API) only encodes and decodes its opaque cursor around ``after`` and
``last_id``. One index range scan on the id however deep the page is, and no COUNT: one row
more than the page is read to learn whether another page follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

R = TypeVar("R")


@dataclass(frozen=True)
class Slice(Generic[R]):
    """One page of rows, and the id of its last row when more follow (else None)."""

    rows: list[R]
    last_id: int | None


def keyset_slice(
    session: Session,
    query: Any,
    id_column: Any,
    *,
    after: int | None,
    limit: int,
    newest_first: bool = False,
    scalars: bool = True,
    row_id: Callable[[Any], int] | None = None,
) -> Slice[Any]:
    """At most ``limit`` rows of ``query`` beyond id ``after`` (below it when
    ``newest_first``), ordered by ``id_column``. ``scalars=False`` keeps whole result rows
    (a join); ``row_id`` then names the id the next slice starts from."""
    if after is not None:
        query = query.where(id_column < after if newest_first else id_column > after)
    query = query.order_by(id_column.desc() if newest_first else id_column.asc())
    query = query.limit(limit + 1)
    rows: list[Any] = list(session.scalars(query) if scalars else session.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    if not (more and rows):
        return Slice(rows, None)
    last = rows[-1]
    return Slice(rows, row_id(last) if row_id else int(last.id))


def mapped(found: Slice[Any], shape: Callable[[list[Any]], list[R]]) -> Slice[R]:
    """The same slice with its rows shaped (e.g. into frozen views, in one more query)."""
    return Slice(shape(found.rows), found.last_id)
