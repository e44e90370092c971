"""Refill-card sheets for printing: a batch's cards as HTML (Jinja2) and an A4 PDF (WeasyPrint).

The sheet is the one place besides the CSV where the codes ever exist, so this adapter takes
them as plain data and keeps nothing. The template is ``ispbill/templates/cards/sheet.html``;
only DejaVu fonts exist on the project's machines ('DejaVu Sans', 'DejaVu Sans Mono').
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2

__all__ = ["CardSheet", "SheetCard", "render_sheet_html", "render_sheet_pdf"]


@dataclass(frozen=True, slots=True)
class SheetCard:
    serial: str
    code: str  # the printed, grouped form


@dataclass(frozen=True, slots=True)
class CardSheet:
    issuer: str
    batch: str
    value_text: str
    expires_text: str
    cards: tuple[SheetCard, ...]


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ispbill", "templates/cards"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_sheet_html(sheet: CardSheet) -> str:
    return _environment().get_template("sheet.html").render(sheet=sheet)


def _url_fetcher() -> Any:
    """data: URLs only: the sheet is self-contained and must not read files or the network."""
    from weasyprint import URLFetcher  # noqa: PLC0415 - importing weasyprint costs ~1.5 s (measured); only when a PDF is made

    return URLFetcher(allowed_protocols=("data",))


def render_sheet_pdf(sheet: CardSheet) -> bytes:
    from weasyprint import HTML  # noqa: PLC0415 - importing weasyprint costs ~1.5 s (measured); only when a PDF is made

    pdf = HTML(string=render_sheet_html(sheet), url_fetcher=_url_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):
        raise TypeError(f"WeasyPrint returned {type(pdf).__name__}, expected bytes")
    return pdf
