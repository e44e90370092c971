"""NAS records and a service's network identity (``use_cases/network/identities.py``), as the CLI and the
console offer them.

NAS records are operator-wide: admin and readonly tokens list them, only an admin adds one. A
service's identity follows its customer: admin, readonly and the owning reseller read it; admin
and the owning reseller replace it; anyone else's service is a 404. Neither secret ever leaves:
a NAS answer has no shared secret, an identity answer only the password's storage scheme.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.entrypoints.api.auth import Admin, Operator, Staff, not_found
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.routes.services import ServiceId, visible_service
from ispbill.entrypoints.api.schemas import (
    NasIn,
    NasOut,
    NasPatch,
    NetworkIdentityIn,
    NetworkIdentityOut,
)
from ispbill.use_cases.network import identities as network
from ispbill.use_cases.network import nas_edits
from ispbill.use_cases.queries import network_lists
from ispbill.use_cases.queries.network_lists import IdentityView, NasView, identity_view, nas_view

nas = APIRouter(prefix="/api/v1/nas", tags=["network"])
identities = APIRouter(prefix="/api/v1/services", tags=["network"])
routers = (nas, identities)
NasId = Annotated[int, Path(ge=1, le=MAX_ID)]


def nas_out(row: NasView) -> NasOut:
    """Built field by field so the shared secret cannot slip into an answer."""
    return NasOut(
        id=row.id,
        name=row.name,
        address=row.address,
        coa_port=row.coa_port,
        vendor=row.vendor,
        require_message_authenticator=row.require_message_authenticator,
        created_at=row.created_at,
    )


def identity_out(row: IdentityView) -> NetworkIdentityOut:
    """Without the password; its scheme only when there is one (as the CLI shows it)."""
    return NetworkIdentityOut(
        service_id=row.service_id,
        username=row.username,
        password_scheme=row.password_scheme,
        mac_address=row.mac_address,
        circuit_id=row.circuit_id,
        static_ip=row.static_ip,
        nas_id=row.nas_id,
        updated_at=row.updated_at,
    )


# --- NAS ---------------------------------------------------------------------------------


@nas.get("", response_model=Page[NasOut])
async def list_nas(request: Request, _caller: Operator, paging: Paging) -> Page[NasOut]:
    """NAS records by id (their shared secrets are never shown)."""
    app = container(request)

    def work() -> Page[NasOut]:
        with app.uow() as uow:
            found = network_lists.list_nas(uow, after=paging.after(), limit=paging.limit)
            return page_of(found, nas_out)

    return await call(work)


@nas.post("", response_model=NasOut, status_code=201)
async def create_nas(body: NasIn, request: Request, caller: Admin) -> NasOut:
    """A new NAS (admin only); regenerate the FreeRADIUS configuration afterwards."""
    app = container(request)
    spec = network.NewNas(**body.model_dump())

    def work() -> NasOut:
        with app.uow() as uow:
            row = network.add_nas(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return nas_out(nas_view(row))

    return await call(work)


@nas.get("/{nas_id}", response_model=NasOut)
async def get_nas(nas_id: NasId, request: Request, _caller: Operator) -> NasOut:
    """One NAS."""
    app = container(request)

    def work() -> NasOut:
        with app.uow() as uow:
            row = network_lists.find_nas(uow, nas_id)
        if row is None:
            raise not_found("nas", nas_id)
        return nas_out(row)

    return await call(work)


@nas.patch("/{nas_id}", response_model=NasOut)
async def update_nas(nas_id: NasId, body: NasPatch, request: Request, caller: Admin) -> NasOut:
    """Change a NAS at once (admin only); the secret is recorded as changed, never shown;
    regenerate the FreeRADIUS configuration afterwards."""
    app = container(request)
    changes = nas_edits.NasChanges(**body.model_dump())

    def work() -> NasOut:
        with app.uow() as uow:
            row = nas_edits.update_nas(
                uow, nas_id=nas_id, changes=changes, now=app.clock.now(), actor=caller.actor
            )
            return nas_out(nas_view(row))

    return await call(work)


# --- a service's network identity --------------------------------------------------------


@identities.get("/{service_id}/network-identity", response_model=NetworkIdentityOut)
async def get_network_identity(
    service_id: ServiceId, request: Request, caller: Staff
) -> NetworkIdentityOut:
    """How the service logs in on the network; 404 until one is set."""
    app = container(request)

    def work() -> NetworkIdentityOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
            return identity_out(identity_view(network.identity_of(uow, service_id)))

    return await call(work)


@identities.put("/{service_id}/network-identity", response_model=NetworkIdentityOut)
async def set_network_identity(
    service_id: ServiceId, body: NetworkIdentityIn, request: Request, caller: Staff
) -> NetworkIdentityOut:
    """Replace how the service logs in (username and password, MAC or circuit id; optional
    static address and NAS); its RADIUS answer is recomputed."""
    app = container(request)
    spec = network.NewIdentity(service_id=service_id, **body.model_dump())

    def work() -> NetworkIdentityOut:
        with app.uow() as uow:
            visible_service(uow, caller, service_id)
        with app.uow() as uow:  # a fresh unit of work: the use case takes the lock itself
            row = network.set_identity(uow, spec=spec, now=app.clock.now(), actor=caller.actor)
            return identity_out(identity_view(row))

    return await call(work)
