"""Invoice documents for people: an ``InvoiceView`` rendered to HTML (Jinja2) and PDF (WeasyPrint).

The domain decides amounts (``domain.invoicing``); this adapter only lays them out. It owns:

- ``InvoiceView``, the one object a template sees: texts already formatted for the reader's
  locale (dates, periods, quantities, tax rates, status) and amounts as ``Money``, which the
  template prints through the ``money`` filter (``Money.format`` in the view's locale, Babel).
  ``build_invoice_view`` makes one from an ``InvoiceDraft`` and its number.
- The templates, one per name, in the package folder ``ispbill/templates/invoices/``. The name
  is the customer class's "invoice template" (PortaBilling seed). Autoescape is on, so a
  customer called ``<script>`` is printed, not run.
- The labels. Templates mark every label as ``_("English text")``, the gettext convention, and
  ``CATALOGS`` maps English text to each language's translation. Issue 8 moves these to Babel
  message catalogs: the templates stay as they are and only ``translator`` changes.

WeasyPrint is imported only when a PDF is made, so HTML rendering works without its system
libraries (Pango). Only DejaVu fonts exist on the project's machines, hence ``DejaVu Sans``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceDraft,
    InvoiceLine,
    InvoiceStatus,
    TaxSummaryRow,
    status_for,
)
from ispbill.domain.money import Money

__all__ = [
    "CATALOGS",
    "InvoiceView",
    "LineView",
    "Party",
    "TaxRowView",
    "build_invoice_view",
    "render_html",
    "render_pdf",
    "translator",
]

TEMPLATE_PACKAGE = ("ispbill", "templates/invoices")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Display only: a prorated quantity such as 10/31 is shown as 0.3226; the amount was computed
# from the exact fraction.
_QUANTITY_PATTERN = "#,##0.####"

Gettext = Callable[[str], str]

# English text -> translation, per language. English needs no catalog: the text is the label.
# Keep the keys exactly as the templates write them inside _("...").
CATALOGS: Mapping[str, Mapping[str, str]] = {
    "cs": {
        "Invoice": "Faktura",
        "Credit note": "Dobropis",
        "Statement": "Výpis",
        "Number": "Číslo",
        "Seller": "Dodavatel",
        "Customer": "Odběratel",
        "Issue date": "Datum vystavení",
        "Due date": "Datum splatnosti",
        "Corrects invoice": "Opravuje fakturu",
        "Description": "Popis",
        "Period": "Období",
        "Quantity": "Množství",
        "Unit price": "Jednotková cena",
        "Net": "Základ",
        "Tax rate": "Sazba daně",
        "Tax": "Daň",
        "Total": "Celkem",
        "incl.": "vč.",
        "Tax summary": "Rekapitulace daně",
        "Total net": "Celkem bez daně",
        "Total tax": "Daň celkem",
        "Total gross": "Celkem s daní",
        "Amount paid": "Uhrazeno",
        "Amount due": "K úhradě",
        "Amount credited": "Dobropisováno",
        "Status": "Stav",
        "Issued": "Vystavena",
        "Partially paid": "Částečně uhrazena",
        "Paid": "Uhrazena",
        "Void": "Stornována",
        "Payment reference": "Reference platby",
        "Please quote the payment reference with your payment.": (
            "Při platbě prosím uveďte referenci platby."
        ),
        "Page": "Strana",
        "of": "z",
    },
}

_STATUS_TEXT = {
    InvoiceStatus.ISSUED: "Issued",
    InvoiceStatus.PARTIALLY_PAID: "Partially paid",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.VOID: "Void",
}
_KIND_TEXT = {
    DocumentKind.INVOICE: "Invoice",
    DocumentKind.CREDIT_NOTE: "Credit note",
    DocumentKind.STATEMENT: "Statement",
}


# -- the view -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """Seller or customer as printed: name, address lines and labelled details.

    ``details`` carries registration numbers and custom data (PortaBilling: "additional
    information ... e.g. driver's license ID or tax code") as (label, value) pairs, printed as
    given; the caller chooses the labels.
    """

    name: str
    address_lines: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LineView:
    description: str
    period_text: str
    quantity_text: str
    unit_price: Money
    net: Money
    tax_rate_text: str
    tax: Money
    gross: Money


@dataclass(frozen=True, slots=True)
class TaxRowView:
    rate_text: str
    net: Money
    tax: Money
    gross: Money


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """Everything a template shows, ready to print: texts formatted, amounts as Money."""

    locale: str
    currency: str
    kind: DocumentKind
    title: str
    number: str
    issue_date: str
    due_date: str
    seller: Party
    customer: Party
    lines: tuple[LineView, ...]
    tax_summary: tuple[TaxRowView, ...]
    net_total: Money
    tax_total: Money
    gross_total: Money
    status: InvoiceStatus
    status_text: str
    amount_paid: Money
    amount_due: Money
    payment_reference: str
    original_number: str | None = None


# -- locale and labels ----------------------------------------------------------------------------


def _parse_locale(text: str) -> Locale:
    try:
        return Locale.parse(text.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError) as exc:
        raise ValidationError(
            "locale", f"unknown locale {text!r}; use e.g. 'en_US' or 'cs_CZ'"
        ) from exc


def translator(locale: str) -> Gettext:
    """The gettext function for ``locale``: English text in, the language's label out.

    Falls back to the English text for a language or a label without a translation.
    """
    catalog = CATALOGS.get(_parse_locale(locale).language, {})

    def gettext(message: str) -> str:
        return catalog.get(message, message)

    return gettext


# -- formatting -----------------------------------------------------------------------------------


def _date_text(d: date, locale: str) -> str:
    return format_date(d, format="medium", locale=locale)


def _period_text(line: InvoiceLine, locale: str) -> str:
    if line.period_start is None or line.period_end is None:
        return ""
    last_day = line.period_end - timedelta(days=1)  # the end is exclusive; print the last day
    if last_day == line.period_start:
        return _date_text(last_day, locale)
    return f"{_date_text(line.period_start, locale)} – {_date_text(last_day, locale)}"


def _quantity_text(quantity: Fraction, locale: str) -> str:
    if quantity.denominator == 1:
        return format_decimal(quantity.numerator, locale=locale)
    exact = Decimal(quantity.numerator) / Decimal(quantity.denominator)
    return format_decimal(exact, format=_QUANTITY_PATTERN, locale=locale)


def _rate_text(rate_bp: int, inclusive: bool, locale: str, _: Gettext) -> str:
    # basis points / 10000 is exact in Decimal; no quantization, so 10.5 % stays 10.5 %.
    text = format_percent(Decimal(rate_bp) / 10_000, locale=locale, decimal_quantization=False)
    return f"{text} {_('incl.')}" if inclusive else text


def _line_view(line: InvoiceLine, locale: str, _: Gettext) -> LineView:
    return LineView(
        description=line.description,
        period_text=_period_text(line, locale),
        quantity_text=_quantity_text(line.quantity, locale),
        unit_price=line.unit_price,
        net=line.net,
        tax_rate_text=_rate_text(line.tax_profile.rate_bp, line.tax_profile.inclusive, locale, _),
        tax=line.tax,
        gross=line.gross,
    )


def _tax_row_view(row: TaxSummaryRow, locale: str, _: Gettext) -> TaxRowView:
    return TaxRowView(
        rate_text=_rate_text(row.rate_bp, row.inclusive, locale, _),
        net=row.net,
        tax=row.tax,
        gross=row.gross,
    )


def build_invoice_view(
    draft: InvoiceDraft,
    *,
    number: str,
    seller: Party,
    customer: Party,
    locale: str,
    paid: Money | None = None,
    voided: bool = False,
) -> InvoiceView:
    """The printable view of an issued document ``number`` with ``paid`` applied to it.

    The status comes from ``invoicing.status_for``; the amount due is what is left to pay (none
    on a void document). The payment reference is the document number.
    """
    if not number.strip():
        raise ValidationError("number", "an issued document has a number")
    code = _parse_locale(locale)
    locale_name = str(code)
    _ = translator(locale_name)
    applied = paid if paid is not None else Money.zero(draft.currency)
    status = status_for(draft.gross, applied, voided)
    due = Money.zero(draft.currency) if voided else draft.gross - applied
    return InvoiceView(
        locale=locale_name,
        currency=draft.currency,
        kind=draft.kind,
        title=_(_KIND_TEXT[draft.kind]),
        number=number.strip(),
        issue_date=_date_text(draft.issue_date, locale_name),
        due_date=_date_text(draft.due_date, locale_name),
        seller=seller,
        customer=customer,
        lines=tuple(_line_view(line, locale_name, _) for line in draft.lines),
        tax_summary=tuple(_tax_row_view(row, locale_name, _) for row in draft.tax_summary()),
        net_total=draft.net,
        tax_total=draft.tax,
        gross_total=draft.gross,
        status=status,
        status_text=_(_STATUS_TEXT[status]),
        amount_paid=applied,
        amount_due=due,
        payment_reference=number.strip(),
        original_number=draft.original_number,
    )


# -- rendering ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(*TEMPLATE_PACKAGE),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails loudly instead of printing ""
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _template(name: str) -> jinja2.Template:
    # The name may come from a customer class: only a plain name, never a path.
    if not isinstance(name, str) or not _TEMPLATE_NAME.fullmatch(name):
        raise ValidationError("invoice_template", f"no template named {name!r}")
    try:
        return _environment().get_template(f"{name}.html")
    except jinja2.TemplateNotFound as exc:
        raise ValidationError("invoice_template", f"no template named {name!r}") from exc


def render_html(view: InvoiceView, template_name: str = "default") -> str:
    """The document as a standalone HTML page (styles inline, no external resources)."""
    template = _template(template_name)
    locale = str(_parse_locale(view.locale))

    def money(amount: Money) -> str:
        return amount.format(locale)

    return template.render(
        view=view,
        _=translator(locale),
        money=money,
        lang=locale.split("_")[0],
    )


def _url_fetcher() -> Any:
    """A WeasyPrint fetcher for data: URLs only.

    Templates are self-contained; refusing every other URL keeps a template (or a value that
    slipped into one) from reading local files or calling out to the network.
    """
    from weasyprint import URLFetcher  # noqa: PLC0415 - importing weasyprint costs ~1.5 s (measured); only when a PDF is made

    return URLFetcher(allowed_protocols=("data",))


def render_pdf(view: InvoiceView, template_name: str = "default") -> bytes:
    """The document as an A4 PDF whose text (number, totals) can be searched and copied."""
    html = render_html(view, template_name)
    from weasyprint import HTML  # noqa: PLC0415 - importing weasyprint costs ~1.5 s (measured); only when a PDF is made

    pdf = HTML(string=html, url_fetcher=_url_fetcher()).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf() without a target returns the bytes
        raise TypeError(f"WeasyPrint returned {type(pdf).__name__}, expected bytes")
    return pdf
