"""Printable documents: invoices and credit notes as HTML (Jinja2) and PDF (WeasyPrint)."""

from ispbill.adapters.pdf.render import (
    InvoiceView,
    LineView,
    Party,
    TaxRowView,
    build_invoice_view,
    render_html,
    render_pdf,
)

__all__ = [
    "InvoiceView",
    "LineView",
    "Party",
    "TaxRowView",
    "build_invoice_view",
    "render_html",
    "render_pdf",
]
