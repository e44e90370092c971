"""Plans in the console (``/console/plans``): the list, its CSV, and a new plan (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import IspbillError
from ispbill.entrypoints.pages import redirect
from ispbill.entrypoints.web.common import (
    Confirmation,
    Staff,
    confirmation_page,
    form_of,
    is_confirmed,
    staff_page,
    work,
)
from ispbill.entrypoints.web.console.editing import (
    ArchiveAction,
    EditPage,
    FormField,
    edit_page,
    joined,
    lines,
    submit,
)
from ispbill.entrypoints.web.csvout import csv_response
from ispbill.entrypoints.web.session import require_admin
from ispbill.use_cases.catalog import catalog_edits as edits
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
from ispbill.use_cases.catalog.offerings import NewPlan, add_plan
from ispbill.use_cases.queries import console_catalog

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/plans")
async def plans(request: Request, staff: Staff, format: str = "", archived: str = "") -> Response:
    shown = bool(archived)  # ?archived=1: the archived plans, hidden otherwise
    rows = await work(request, lambda uow, _now: console_catalog.plans(uow.session, archived=shown))
    if format == "csv":
        return csv_response(
            "plans.csv",
            [
                "id",
                "name",
                "price_minor",
                "currency",
                "cycle",
                "download_kbps",
                "upload_kbps",
                "active",
            ],
            [
                (
                    p.id,
                    p.name,
                    p.price_minor,
                    p.currency,
                    p.cycle_kind,
                    p.download_kbps,
                    p.upload_kbps,
                    p.active,
                )
                for p in rows
            ],
        )
    return staff_page(
        request, staff, "console/plans.html", {"plans": rows, "error": None, "form": {}}
    )


@router.post("/plans")
async def create_plan(request: Request, staff: Staff) -> Response:
    require_admin(staff)
    form = await form_of(request)
    spec = NewPlan(
        name=form.get("name", ""),
        price=form.get("price", ""),
        currency=form.get("currency", ""),
        download=form.get("download", ""),
        upload=form.get("upload", ""),
        cycle=form.get("cycle") or "customer",
    )
    try:
        await work(request, lambda uow, now: add_plan(uow, spec=spec, now=now, actor=staff.actor))
    except IspbillError as exc:
        rows = await work(
            request, lambda uow, _now: console_catalog.plans(uow.session, archived=False)
        )
        return staff_page(
            request,
            staff,
            "console/plans.html",
            {"plans": rows, "error": str(exc), "form": form},
            status=422,
        )
    return redirect(request, "/console/plans")


def plan_form(plan: Any, taxes: list[Any]) -> EditPage:
    tiers = [
        f"{t.limit_bytes}B:{t.action}" + (f":{t.down_kbps}k/{t.up_kbps}k" if t.down_kbps else "")
        for t in sorted(plan.fup_tiers, key=lambda t: t.tier)
    ]
    periods = [
        f"{o['months']}" + (f":{o['discount_bp'] / 100:g}%" if o.get("discount_bp") else "")
        for o in plan.period_options
    ]
    archived = plan.archived_at is not None
    return EditPage(
        title=f"Edit plan {plan.name}",
        action=f"/console/plans/{plan.id}/edit",
        back="/console/plans",
        fields=[
            FormField("name", "Name", plan.name),
            FormField("download", "Download (e.g. 100M)", f"{plan.download_kbps}k"),
            FormField("upload", "Upload (e.g. 20M)", f"{plan.upload_kbps}k"),
            FormField(
                "tax_profile",
                "Tax profile",
                str(plan.tax_profile_id or ""),
                "select",
                [("", "—"), *[(str(t.id), t.name) for t in taxes]],
            ),
            FormField(
                "fup_tiers",
                "FUP tiers, one per line (LIMIT:throttle:DOWN/UP or LIMIT:suspend)",
                joined(tiers),
                "textarea",
            ),
            FormField(
                "period_months",
                "Billing periods, one per line (MONTHS[:DISCOUNT%])",
                joined(periods),
                "textarea",
            ),
        ],
        archive=ArchiveAction(
            f"/console/plans/{plan.id}/{'restore' if archived else 'archive'}",
            "Restore" if archived else "Archive",
            "Restoring sells the plan again."
            if archived
            else "Archiving stops selling the plan: its services go on, no new service or plan "
            "change may pick it, and it leaves the plan list.",
        ),
        notes=(
            "The price is not edited here: a price change needs an effective date.",
            *(("This plan is archived.",) if archived else ()),
        ),
    )


def _plan_page(plan_id: int) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> EditPage:
        plan = console_catalog.plan(uow.session, plan_id)
        if plan is None:
            raise HTTPException(404, "no such plan")
        return plan_form(plan, console_catalog.tax_profiles(uow.session))

    return load


@router.get("/plans/{plan_id}/edit")
async def edit_plan_form(request: Request, staff: Staff, plan_id: int) -> Response:
    require_admin(staff)
    return edit_page(request, staff, await work(request, _plan_page(plan_id)))


@router.post("/plans/{plan_id}/edit")
async def update_plan(request: Request, staff: Staff, plan_id: int) -> Response:
    require_admin(staff)
    load = _plan_page(plan_id)
    await work(request, load)  # a 404 before anything else

    def save(uow: UnitOfWork, now: datetime, form: dict[str, str]) -> object:
        tax = form.get("tax_profile", "")
        changes = edits.PlanChanges(
            name=form.get("name"),
            download=form.get("download"),
            upload=form.get("upload"),
            fup_tiers=lines(form.get("fup_tiers")),
            period_months=lines(form.get("period_months")),
            tax_profile_id=tax_profile_id_of(uow, tax) if tax.strip() else 0,
        )
        return edits.update_plan(uow, plan_id=plan_id, changes=changes, now=now, actor=staff.actor)

    return await submit(request, staff, load=load, save=save, done="/console/plans")


def archive_confirmation(plan_id: int, name: str, services: int, reason: str) -> Confirmation:
    """What archiving a plan does, stated before it is done (restoring needs none)."""
    return Confirmation(
        title=f"Archive plan {name}",
        consequence=(
            f"This will archive the plan {name}: it is no longer sold (no new service or plan "
            f"change may pick it) and it leaves the plan list; its {services} service(s) not "
            "ended go on at their price. Reason: "
            f"{reason.strip() or '(none given)'}"
        ),
        action=f"/console/plans/{plan_id}/archive",
        back=f"/console/plans/{plan_id}/edit",
        button="Archive plan",
        fields={"reason": reason},
    )


def _archive_question(plan_id: int, reason: str) -> Any:
    def load(uow: UnitOfWork, _now: datetime) -> Confirmation:
        plan = console_catalog.plan(uow.session, plan_id)
        if plan is None:
            raise HTTPException(404, "no such plan")
        services = console_catalog.open_services_on_plan(uow.session, plan_id)
        return archive_confirmation(plan_id, plan.name, services, reason)

    return load


@router.post("/plans/{plan_id}/archive")
async def archive_plan(request: Request, staff: Staff, plan_id: int) -> Response:
    """Done only with the token of the confirmation as it stands now."""
    require_admin(staff)
    form = await form_of(request)
    confirmation = await work(request, _archive_question(plan_id, form.get("reason", "")))
    if not is_confirmed(request, form, confirmation):
        return confirmation_page(request, staff, confirmation, form)
    return await submit(
        request,
        staff,
        load=_plan_page(plan_id),
        save=lambda uow, now, form: edits.archive_plan(
            uow, plan_id=plan_id, now=now, actor=staff.actor, reason=form.get("reason", "")
        ),
        done="/console/plans",
    )


@router.post("/plans/{plan_id}/restore")
async def restore_plan(request: Request, staff: Staff, plan_id: int) -> Response:
    require_admin(staff)
    return await submit(
        request,
        staff,
        load=_plan_page(plan_id),
        save=lambda uow, now, form: edits.restore_plan(
            uow, plan_id=plan_id, now=now, actor=staff.actor, reason=form.get("reason", "")
        ),
        done="/console/plans?archived=1",
    )
