"""Finding records by id or by name, with a refusal that names the field."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.domain.errors import Conflict, NotFound
from ispbill.domain.text import refuse_nul

R = TypeVar("R")
MAX_ID = 2**31 - 1  # ids are INTEGER columns


def by_id(session: Session, model: type[R], row_id: int, *, field: str, entity: str = "") -> R:
    """The row with id ``row_id``: ids come typed from the caller (a path, a form's id, or a
    name the CLI resolved); refused naming ``field`` when there is none."""
    row = session.get(model, row_id) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise NotFound(entity or field.replace("_", " "), row_id, field=field)
    return row


def by_id_or_name(session: Session, model: type[R], ref: str | int, *, field: str) -> R:
    """``ref`` is a numeric id or an exact name; operators type either."""
    numeric = isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit())
    column: Any = model.id if numeric else model.name  # type: ignore[attr-defined]
    value: Any = int(ref) if numeric else refuse_nul(str(ref).strip(), field)
    if numeric and not 0 < value <= MAX_ID:  # beyond any stored id (and any 64-bit integer)
        raise NotFound(field.replace("_", " "), ref, field=field)
    row = session.scalars(select(model).where(column == value)).one_or_none()
    if row is None:
        raise NotFound(field.replace("_", " "), ref, field=field)
    return row


def require_unique_name(
    session: Session, model: type[Any], name: str, *, field: str = "name"
) -> None:
    """Check before writing so the refusal is clear; the UNIQUE constraint is the backstop."""
    if session.scalars(select(model.id).where(model.name == name)).first() is not None:
        raise Conflict(field, f"{name!r} is already taken; names must be unique")
