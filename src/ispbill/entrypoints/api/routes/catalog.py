"""Resellers, customer classes and tax profiles: the catalogue customers are built from.

Admins create; admin and readonly tokens read all; a reseller token reads the classes and tax
profiles and only its own reseller record (another reseller is a 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin, Staff, not_found
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.routes.plans import optional_tax_id
from ispbill.entrypoints.api.schemas import (
    TEXT,
    CustomerClassIn,
    CustomerClassOut,
    CustomerClassPatch,
    ResellerIn,
    ResellerOut,
    ResellerPatch,
    TaxProfileIn,
    TaxProfileOut,
    TaxProfilePatch,
)
from ispbill.use_cases.catalog import catalog_edits as edits
from ispbill.use_cases.catalog.name_lookups import tax_profile_id_of
from ispbill.use_cases.catalog.offerings import NewClass, add_class, add_reseller, add_tax_profile
from ispbill.use_cases.queries import catalog_lists as catalog
from ispbill.use_cases.queries.catalog_lists import (
    ClassView,
    ResellerView,
    TaxProfileView,
    class_view,
    reseller_view,
    tax_profile_view,
)

resellers = APIRouter(prefix="/api/v1/resellers", tags=["resellers"])
classes = APIRouter(prefix="/api/v1/customer-classes", tags=["customer classes"])
taxes = APIRouter(prefix="/api/v1/tax-profiles", tags=["tax profiles"])
routers = (resellers, classes, taxes)
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Search = Annotated[str | None, Query(max_length=200, pattern=TEXT)]


def reseller_out(row: ResellerView) -> ResellerOut:
    return ResellerOut(id=row.id, name=row.name, created_at=row.created_at)


def class_out(row: ClassView) -> CustomerClassOut:
    return CustomerClassOut(
        id=row.id,
        name=row.name,
        grace_days=row.grace_days,
        invoice_template=row.invoice_template,
        tax_profile_id=row.tax_profile_id,
        notification_emails=list(row.notification_emails),
        custom_fields=list(row.custom_fields),
        created_at=row.created_at,
    )


def tax_out(row: TaxProfileView) -> TaxProfileOut:
    return TaxProfileOut(id=row.id, name=row.name, rate_bp=row.rate_bp, inclusive=row.inclusive)


# --- resellers ---------------------------------------------------------------------------


@resellers.get("", response_model=Page[ResellerOut])
async def list_resellers(
    request: Request, caller: Staff, paging: Paging, search: Search = None
) -> Page[ResellerOut]:
    """Resellers by id (a reseller token sees only its own)."""
    app = container(request)

    def work() -> Page[ResellerOut]:
        with app.uow() as uow:
            found = catalog.list_resellers(
                uow, caller.reader, search, after=paging.after(), limit=paging.limit
            )
            return page_of(found, reseller_out)

    return await call(work)


@resellers.post("", response_model=ResellerOut, status_code=201)
async def create_reseller(body: ResellerIn, request: Request, caller: Admin) -> ResellerOut:
    """A new reseller (admin only)."""
    app = container(request)

    def work() -> ResellerOut:
        with app.uow() as uow:
            row = add_reseller(uow, name=body.name, now=app.clock.now(), actor=caller.actor)
            return reseller_out(reseller_view(row))

    return await call(work)


@resellers.get("/{reseller_id}", response_model=ResellerOut)
async def get_reseller(reseller_id: RowId, request: Request, caller: Staff) -> ResellerOut:
    """One reseller."""
    app = container(request)

    def work() -> ResellerOut:
        with app.uow() as uow:
            row = catalog.find_reseller(uow, caller.reader, reseller_id)
        if row is None:
            raise not_found("reseller", reseller_id)
        return reseller_out(row)

    return await call(work)


# --- customer classes --------------------------------------------------------------------


@classes.get("", response_model=Page[CustomerClassOut])
async def list_customer_classes(
    request: Request, _caller: Staff, paging: Paging, search: Search = None
) -> Page[CustomerClassOut]:
    """Customer classes by id."""
    app = container(request)

    def work() -> Page[CustomerClassOut]:
        with app.uow() as uow:
            found = catalog.list_classes(uow, search, after=paging.after(), limit=paging.limit)
            return page_of(found, class_out)

    return await call(work)


@classes.post("", response_model=CustomerClassOut, status_code=201)
async def create_customer_class(
    body: CustomerClassIn, request: Request, caller: Admin
) -> CustomerClassOut:
    """A new customer class (admin only)."""
    app = container(request)
    fields, tax = body.model_dump(exclude={"tax_profile"}), body.tax_profile

    def work() -> CustomerClassOut:
        with app.uow() as uow:  # names are looked up here, at the edge
            tax_id = tax_profile_id_of(uow, tax) if tax else None
            spec = NewClass(**fields, tax_profile_id=tax_id)
            row = add_class(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return class_out(class_view(row))

    return await call(work)


@classes.get("/{class_id}", response_model=CustomerClassOut)
async def get_customer_class(class_id: RowId, request: Request, _caller: Staff) -> CustomerClassOut:
    """One customer class."""
    app = container(request)

    def work() -> CustomerClassOut:
        with app.uow() as uow:
            row = catalog.find_class(uow, class_id)
        if row is None:
            raise not_found("customer_class", class_id)
        return class_out(row)

    return await call(work)


# --- tax profiles ------------------------------------------------------------------------


@taxes.get("", response_model=Page[TaxProfileOut])
async def list_tax_profiles(
    request: Request, _caller: Staff, paging: Paging, search: Search = None
) -> Page[TaxProfileOut]:
    """Tax profiles by id."""
    app = container(request)

    def work() -> Page[TaxProfileOut]:
        with app.uow() as uow:
            found = catalog.list_tax_profiles(uow, search, after=paging.after(), limit=paging.limit)
            return page_of(found, tax_out)

    return await call(work)


@taxes.post("", response_model=TaxProfileOut, status_code=201)
async def create_tax_profile(body: TaxProfileIn, request: Request, caller: Admin) -> TaxProfileOut:
    """A new tax profile (admin only)."""
    app = container(request)

    def work() -> TaxProfileOut:
        with app.uow() as uow:
            row = add_tax_profile(
                uow,
                name=body.name,
                rate=body.rate,
                inclusive=body.inclusive,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return tax_out(tax_profile_view(row))

    return await call(work)


@taxes.get("/{tax_profile_id}", response_model=TaxProfileOut)
async def get_tax_profile(tax_profile_id: RowId, request: Request, _caller: Staff) -> TaxProfileOut:
    """One tax profile."""
    app = container(request)

    def work() -> TaxProfileOut:
        with app.uow() as uow:
            row = catalog.find_tax_profile(uow, tax_profile_id)
        if row is None:
            raise not_found("tax_profile", tax_profile_id)
        return tax_out(row)

    return await call(work)


# --- edits (admin only) ----------------------------------------------------------------------


@resellers.patch("/{reseller_id}", response_model=ResellerOut)
async def update_reseller(
    reseller_id: RowId, body: ResellerPatch, request: Request, caller: Admin
) -> ResellerOut:
    """Rename a reseller; one ``reseller.updated`` event."""
    app = container(request)

    def work() -> ResellerOut:
        with app.uow() as uow:
            row = edits.update_reseller(
                uow,
                reseller_id=reseller_id,
                name=body.name,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return reseller_out(reseller_view(row))

    return await call(work)


@classes.patch("/{class_id}", response_model=CustomerClassOut)
async def update_customer_class(
    class_id: RowId, body: CustomerClassPatch, request: Request, caller: Admin
) -> CustomerClassOut:
    """Change a class at once; its customers without their own value follow it."""
    app = container(request)

    def work() -> CustomerClassOut:
        with app.uow() as uow:
            tax_id = optional_tax_id(uow, body.tax_profile)
        changes = edits.ClassChanges(
            name=body.name,
            grace_days=body.grace_days,
            invoice_template=body.invoice_template,
            tax_profile_id=tax_id,
            notification_emails=body.notification_emails,
            custom_fields=body.custom_fields,
        )
        with app.uow() as uow:
            row = edits.update_class(
                uow, class_id=class_id, changes=changes, now=app.clock.now(), actor=caller.actor
            )
            return class_out(class_view(row))

    return await call(work)


@taxes.patch("/{tax_profile_id}", response_model=TaxProfileOut)
async def update_tax_profile(
    tax_profile_id: RowId, body: TaxProfilePatch, request: Request, caller: Admin
) -> TaxProfileOut:
    """A new name, rate or inclusiveness; the rate applies to charges made from now on."""
    app = container(request)

    def work() -> TaxProfileOut:
        with app.uow() as uow:
            row = edits.update_tax_profile(
                uow,
                tax_profile_id=tax_profile_id,
                name=body.name,
                rate=body.rate.rstrip("%") if body.rate is not None else None,
                inclusive=body.inclusive,
                now=app.clock.now(),
                actor=caller.actor,
            )
            return tax_out(tax_profile_view(row))

    return await call(work)
