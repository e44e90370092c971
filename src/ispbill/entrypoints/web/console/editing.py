"""What the console's edit pages share (issue 17): one form template (``console/edit.html``)
that lists a resource's fields, prefilled with the stored values, and shows a refusal above the
form with what was typed kept (nothing is written). Each resource's module says which fields
it edits and calls its own use case; lists of values are typed one per line."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError, ValidationError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import form_of, staff_page, work
from ispbill.entrypoints.web.session import StaffPrincipal


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    value: Any = ""
    kind: str = "text"  # text, textarea, select, checkbox, date
    choices: Sequence[tuple[str, str]] = ()  # (value, label) for a select
    hint: str = ""


@dataclass(frozen=True)
class ArchiveAction:
    """The archive (or restore) button under an edit form, with the consequence stated."""

    action: str
    label: str
    consequence: str


@dataclass(frozen=True)
class EditPage:
    title: str
    action: str
    back: str
    fields: Sequence[FormField]
    archive: ArchiveAction | None = None
    notes: Sequence[str] = field(default_factory=tuple)


def lines(text: str | None) -> list[str]:
    """A textarea's values, one per line, blanks dropped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def joined(values: Sequence[str] | None) -> str:
    return "\n".join(values or ())


def with_typed(page: EditPage, form: Mapping[str, str]) -> EditPage:
    """The page again with what was typed in place of the stored values (after a refusal)."""
    fields = [
        FormField(
            f.name,
            f.label,
            ("on" if f.name in form else "") if f.kind == "checkbox" else form.get(f.name, ""),
            f.kind,
            f.choices,
            f.hint,
        )
        for f in page.fields
    ]
    return EditPage(page.title, page.action, page.back, fields, page.archive, page.notes)


def edit_page(
    request: Request,
    staff: StaffPrincipal,
    page: EditPage,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return staff_page(request, staff, "console/edit.html", {"page": page, "error": error}, status)


def whole_number(text: str | None, field_name: str) -> int | None:
    """A form's optional whole number: empty is None, anything else must parse."""
    if text is None or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise ValidationError(field_name, "must be a whole number") from None


async def submit(
    request: Request,
    staff: StaffPrincipal,
    *,
    load: Callable[[UnitOfWork, datetime], EditPage],
    save: Callable[[UnitOfWork, datetime, dict[str, str]], object],
    done: str,
) -> Response:
    """Run one edit from a posted form; on a refusal show the form again with the message and
    what was typed (422), nothing written; else back to ``done``."""
    form = await form_of(request)
    try:
        await work(request, lambda uow, now: save(uow, now, form))
    except IspbillError as exc:
        page = await work(request, load)
        return edit_page(request, staff, with_typed(page, form), error=str(exc), status=422)
    return redirect(request, done)
