"""Invoice documents: HTML escapes what customers type, Czech formats, and a PDF with real text.

The PDF is made once per module (WeasyPrint takes about a second). Its text is read back two
ways: ``pdftotext`` (Debian package poppler-utils) for the page text when it is installed, and,
always, the document information dictionary, whose title and subject carry the number and the
total, decoded here with zlib alone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from ispbill.adapters.pdf import (
    InvoiceView,
    Party,
    build_invoice_view,
    render_html,
    render_pdf,
)
from ispbill.adapters.pdf.render import CATALOGS, _url_fetcher, translator
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import (
    DocumentKind,
    InvoiceDraft,
    InvoiceStatus,
    credit_note_for,
    due_date,
    price_line,
    prorated_credit_line,
)
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxProfile

NBSP = "\u00a0"
NUMBER = "2026-000123"
SELLER = Party(
    "Síť Praha s.r.o.",
    ("Hlavní 1", "110 00 Praha 1"),
    (("IČO", "12345678"), ("DIČ", "CZ12345678")),
)
CUSTOMER = Party(
    "Jan <script>alert('x')</script> Novák & syn",
    ("Lipová 5", "602 00 Brno"),
    (("Tax code", "<b>CZ8001011234</b>"),),
)


def czk(text: str) -> Money:
    return Money.from_major(text, "CZK")


def invoice(currency: str = "CZK") -> InvoiceDraft:
    issued = date(2026, 3, 1)
    lines = (
        price_line(
            description="Optika 1000/1000 Mbit/s",
            unit_price=Money.from_major("1234.50", currency),
            tax_profile=TaxProfile("DPH 21 %", 2100),
            service_id=1,
            period_start=date(2026, 3, 1),
            period_end=date(2026, 4, 1),
        ),
        price_line(
            description="Pronájem routeru",
            unit_price=Money.from_major("121.00", currency),
            tax_profile=TaxProfile("DPH 21 % vč.", 2100, inclusive=True),
            quantity=Fraction(21, 31),
            service_id=2,
            period_start=date(2026, 3, 11),
            period_end=date(2026, 4, 1),
        ),
    )
    return InvoiceDraft(
        kind=DocumentKind.INVOICE,
        customer_id=7,
        currency=currency,
        issue_date=issued,
        due_date=due_date(issued, 14),
        lines=lines,
    )


def czech_view(**changes: object) -> InvoiceView:
    arguments: dict[str, object] = {
        "number": NUMBER,
        "seller": SELLER,
        "customer": CUSTOMER,
        "locale": "cs_CZ",
        "paid": czk("100.00"),
    }
    arguments.update(changes)
    return build_invoice_view(invoice(), **arguments)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return render_pdf(czech_view())


# -- HTML -----------------------------------------------------------------------------------------


def test_customer_text_is_escaped() -> None:
    html = render_html(czech_view())
    assert "<script>" not in html
    assert "<b>CZ8001011234</b>" not in html
    assert "Jan &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Novák &amp; syn" in html
    assert "&lt;b&gt;CZ8001011234&lt;/b&gt;" in html


def test_czech_amounts_dates_and_labels() -> None:
    view = czech_view()
    html = render_html(view)
    # Line 1: 1 234,50 + 21 % = 259,245 -> 259,25 tax (half-up, where Babel alone would give the
    # half-even 259,24): 1 493,75. Line 2: 121,00 incl. 21 % for 21/31 days = 81,97.
    assert view.lines[0].tax == czk("259.25")
    assert view.gross_total == czk("1575.72")
    assert view.amount_due == czk("1475.72")
    assert f"1{NBSP}234,50{NBSP}Kč" in html
    assert f"259,25{NBSP}Kč" in html
    assert f"1{NBSP}575,72{NBSP}Kč" in html
    assert f"1{NBSP}475,72{NBSP}Kč" in html  # amount due after 100,00 paid
    assert view.issue_date == "1. 3. 2026"
    assert view.due_date == "15. 3. 2026"
    assert view.lines[0].period_text == "1. 3. 2026 – 31. 3. 2026"  # the end is exclusive
    assert view.lines[1].quantity_text == "0,6774"
    assert view.lines[1].tax_rate_text == f"21{NBSP}% vč."
    assert [row.rate_text for row in view.tax_summary] == [f"21{NBSP}%", f"21{NBSP}% vč."]
    assert view.status is InvoiceStatus.PARTIALLY_PAID
    assert view.status_text == "Částečně uhrazena"
    for label in ("Faktura", "Datum splatnosti", "K úhradě", "Reference platby", "Odběratel"):
        assert label in html
    assert 'lang="cs"' in html


def test_english_document() -> None:
    view = build_invoice_view(
        invoice("USD"), number=NUMBER, seller=SELLER, customer=CUSTOMER, locale="en_US"
    )
    html = render_html(view)
    assert view.issue_date == "Mar 1, 2026"
    assert "$1,234.50" in html
    assert "Amount due" in html
    assert view.status_text == "Issued"
    assert view.amount_due == view.gross_total


def test_credit_note_names_the_invoice_it_corrects() -> None:
    original = invoice()
    note = credit_note_for(
        [prorated_credit_line(original.lines[0], 10)],
        original=original,
        original_number=NUMBER,
        issue_date=date(2026, 3, 22),
    )
    view = build_invoice_view(
        note, number="CN2026-00001", seller=SELLER, customer=CUSTOMER, locale="cs_CZ"
    )
    html = render_html(view)
    assert view.title == "Dobropis"
    assert "Opravuje fakturu" in html
    assert NUMBER in html
    assert f"398,23{NBSP}Kč" in html  # 1 234,50 * 10/31, rounded once
    assert view.gross_total == czk("481.86")
    assert "K úhradě" not in html


def test_void_invoice_owes_nothing() -> None:
    view = czech_view(voided=True)
    assert view.status is InvoiceStatus.VOID
    assert view.amount_due == czk("0.00")
    assert "Stornována" in render_html(view)


@pytest.mark.parametrize("name", ["nope", "../default", "default.html", "", "Default", "_base"])
def test_unknown_template_is_refused(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        render_html(czech_view(), template_name=name)
    assert exc.value.field == "invoice_template"
    assert exc.value.rule == f"no template named {name!r}"


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        czech_view(locale="xx_YY")
    assert exc.value.field == "locale"


def test_every_label_in_the_template_has_a_czech_translation() -> None:
    # Labels are _("...") calls so Babel can extract them later (Issue 8); until then the dict
    # must cover them, or a Czech invoice would show English words.
    template = Path(__file__).parents[2] / "src/ispbill/templates/invoices/default.html"
    used = set(re.findall(r"""_\((["'])(.+?)\1\)""", template.read_text(encoding="utf-8")))
    labels = {text for _, text in used}
    assert labels, "the template marks no labels"
    assert labels <= set(CATALOGS["cs"])
    assert translator("cs_CZ")("Amount due") == "K úhradě"
    assert translator("de_DE")("Amount due") == "Amount due"  # no catalog: English


# -- PDF ------------------------------------------------------------------------------------------


def _pdf_info(pdf: bytes) -> dict[str, str]:
    """The document information dictionary (title, subject, author) of a WeasyPrint PDF.

    WeasyPrint puts it in a compressed object stream; its strings are literal ``(text)`` or,
    when not ASCII, UTF-16 hex ``<feff...>``.
    """
    entry = re.compile(rb"/(\w+) ?(?:\(((?:[^()\\]|\\.)*)\)|<([0-9a-fA-F]*)>)")
    for match in re.finditer(rb"stream\r?\n", pdf):
        try:
            data = zlib.decompressobj().decompress(pdf[match.end() :])
        except zlib.error:
            continue
        position = data.find(b"<</Producer ")
        if position < 0:
            continue
        info = {}
        position += 2
        while found := entry.match(data, position):
            key, literal, hexa = found.groups()
            if hexa is not None:
                raw = bytes.fromhex(hexa.decode())
                text = raw[2:].decode("utf-16-be") if raw[:2] == b"\xfe\xff" else raw.decode()
            else:
                text = re.sub(rb"\\(.)", rb"\1", literal).decode("latin-1")
            info[key.decode()] = text
            position = found.end()
        return info
    raise AssertionError("no document information dictionary in the PDF")


def test_pdf_is_a_pdf_carrying_the_number_and_total(pdf_bytes: bytes) -> None:
    assert pdf_bytes.startswith(b"%PDF")
    info = _pdf_info(pdf_bytes)
    assert info["Title"] == f"Faktura {NUMBER}"
    assert info["Subject"] == f"Faktura {NUMBER}: Celkem 1{NBSP}575,72{NBSP}Kč"
    assert info["Author"] == SELLER.name


@pytest.mark.skipif(
    shutil.which("pdftotext") is None,
    reason="pdftotext missing: apt-get install poppler-utils to check the page text",
)
def test_pdf_page_text(pdf_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf_bytes)
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    text = " ".join(result.stdout.decode("utf-8").replace(NBSP, " ").split())
    assert NUMBER in text
    assert "Reference platby: 2026-000123" in text
    for amount in ("1 575,72 Kč", "1 475,72 Kč", "1 234,50 Kč", "259,25 Kč", "100,00 Kč"):
        assert amount in text
    assert "Jan <script>alert('x')</script> Novák & syn" in text  # shown, as text
    assert "Strana 1 z 1" in text


def test_pdf_rendering_fetches_nothing(tmp_path: Path) -> None:
    # Templates are self-contained; the fetcher WeasyPrint gets refuses files and the network.
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }", encoding="utf-8")
    fetcher = _url_fetcher()
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher.fetch(secret.as_uri())
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher.fetch("http://127.0.0.1:9/x.png")
