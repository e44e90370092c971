"""An invoice, statement or credit note as a PDF (``/console/invoices/{number}.pdf``); the list
of documents is ``/console/invoices``, in ``lists``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.pdf.render import render_pdf
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.web.common import Staff, work
from ispbill.entrypoints.web.session import check_visible
from ispbill.use_cases.billing.invoice_documents import get_invoice, printable

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/invoices/{number}.pdf")
async def invoice_pdf(request: Request, staff: Staff, number: str) -> Response:
    def job(uow: UnitOfWork, _now: datetime) -> bytes:
        document = printable(uow, number)
        check_visible(staff, get_invoice(uow, number).customer)
        return render_pdf(document.view, document.template)

    try:
        pdf = await work(request, job)
    except IspbillError:
        raise HTTPException(404, "no such invoice") from None
    return Response(pdf, media_type="application/pdf")
