"""Customers, their wallets and ledger history, and the engine's dry run for one of them.

``GET /api/v1/customers`` pages by id (``pagination.py``); a reseller token sees only its own
customers and gets a 404 for anyone else's; a customer session sees only itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ispbill.adapters.db.lookups import MAX_ID
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.billing import Charge, Transition
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.ledger import EntryKind
from ispbill.entrypoints.api.auth import Caller, Principal, Staff, not_found, require_customer
from ispbill.entrypoints.api.deps import container
from ispbill.entrypoints.api.errors import ApiProblem, call
from ispbill.entrypoints.api.pagination import Page, Paging, page_of
from ispbill.entrypoints.api.routes.engine import within_horizon
from ispbill.entrypoints.api.schemas import (
    TEXT,
    Amount,
    ArchiveIn,
    CancelScheduledIn,
    ChargeAndInvoiceOut,
    ChargePreview,
    CheckoutIn,
    CheckoutOut,
    CustomerIn,
    CustomerOut,
    CustomerPatch,
    Instant,
    LedgerEntryOut,
    PendingChangeOut,
    PostingOut,
    PreviewOut,
    QuoteLineOut,
    TransitionPreview,
    WalletOut,
)
from ispbill.use_cases.billing import customer_pending
from ispbill.use_cases.billing.reevaluation import charge_and_invoice, preview
from ispbill.use_cases.catalog import customer_edits as edit_cases
from ispbill.use_cases.catalog.customer_accounts import NewCustomer, add_customer
from ispbill.use_cases.catalog.customer_edits import CustomerChanges
from ispbill.use_cases.catalog.customer_records import ContactRecord
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, reseller_id_of
from ispbill.use_cases.payments.checkouts import start_checkout
from ispbill.use_cases.payments.recording import lock_customer
from ispbill.use_cases.queries import cli_listings, customer_lists
from ispbill.use_cases.queries.customer_lists import CustomerView, PostingView

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
RECORD_FIELDS = {
    "emails",
    "phones",
    "billing_address",
    "service_address",
    "service_gps",
    "company_registration_number",
    "vat_id",
    "internal_notes",
}
CustomerId = Annotated[int, Path(ge=1, le=MAX_ID)]
RECENT_POSTINGS = 20


def pending_out(v: customer_pending.PendingView) -> PendingChangeOut:
    return PendingChangeOut(**v.as_json())


def customer_out(
    customer: CustomerView,
    caller: Principal | None = None,
    pending: list[customer_pending.PendingView] | None = None,
) -> CustomerOut:
    """The customer as the API shows it; internal notes only to staff (never to the
    subscriber's own session)."""
    staff = caller is None or caller.role != "customer"
    return CustomerOut(
        id=customer.id,
        name=customer.name,
        status=customer.status,
        reseller_id=customer.reseller_id,
        class_id=customer.class_id,
        currency=customer.currency,
        balance_control=customer.balance_control,
        billing_timezone=customer.billing_timezone,
        invoicing_mode=customer.invoicing_mode,
        locale=customer.locale,
        credit_limit=(
            Amount.of(customer.credit_limit) if customer.credit_limit is not None else None
        ),
        minimum_balance=Amount.of(customer.minimum_balance),
        created_at=customer.created_at,
        balance=Amount.of(customer.balance),
        billing_cycle=customer.billing_cycle,
        cycle_n=customer.cycle_n,
        emails=list(customer.emails),
        phones=list(customer.phones),
        billing_address=customer.billing_address,
        service_address=customer.service_address,
        service_gps=customer.service_gps,
        company_registration_number=customer.company_registration_number,
        vat_id=customer.vat_id,
        internal_notes=customer.internal_notes if staff else None,
        archived_at=customer.archived_at,
        pending_changes=None if pending is None else [pending_out(p) for p in pending],
    )


def visible_customer(uow: UnitOfWork, caller: Principal, customer_id: int) -> CustomerView:
    """The customer with its balance, or a 404 when absent or not this caller's."""
    found = customer_lists.find_customer(uow, caller.reader, customer_id)
    if found is None:
        raise not_found("customer", customer_id)
    return found


def entry_out(posting: PostingView) -> LedgerEntryOut:
    return LedgerEntryOut(
        posting_id=posting.posting_id,
        transaction_id=posting.transaction_id,
        kind=posting.kind,
        memo=posting.memo,
        amount=Amount.of(posting.amount),
        effective_at=posting.effective_at,
        recorded_at=posting.recorded_at,
    )


@router.get("", response_model=Page[CustomerOut])
async def list_customers(
    request: Request,
    caller: Staff,
    paging: Paging,
    search: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    status: Annotated[CustomerStatus | None, Query()] = None,
    balance_control: Annotated[BalanceControl | None, Query()] = None,
    reseller_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    class_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    archived: Annotated[
        bool, Query(description="The archived customers instead of the others.")
    ] = False,
) -> Page[CustomerOut]:
    """Customers by id, a page at a time; ``search`` matches part of the name."""
    app = container(request)

    def work() -> Page[CustomerOut]:
        wanted = customer_lists.CustomerFilter(
            search=search or None,
            status=status.value if status is not None else None,
            balance_control=balance_control.value if balance_control is not None else None,
            reseller_id=reseller_id,
            class_id=class_id,
            archived=archived,
        )
        with app.uow() as uow:
            found = customer_lists.list_customers(
                uow, caller.reader, wanted, after=paging.after(), limit=paging.limit
            )
            return page_of(found, customer_out)

    return await call(work)


@router.post("", response_model=CustomerOut, status_code=201)
async def create_customer(body: CustomerIn, request: Request, caller: Staff) -> CustomerOut:
    """A customer with its wallet (and opening funds). A reseller's customer is its own."""
    app = container(request)
    fields = body.model_dump(exclude={"customer_class", "reseller", *RECORD_FIELDS})
    record = ContactRecord(
        emails=body.emails or None,
        phones=body.phones or None,
        billing_address=body.billing_address,
        service_address=body.service_address,
        service_gps=body.service_gps,
        company_registration_number=body.company_registration_number,
        vat_id=body.vat_id,
        internal_notes=body.internal_notes,
    )

    def work() -> CustomerOut:
        with app.uow() as uow:
            if caller.role == "reseller":
                if body.reseller is not None:
                    raise ApiProblem(
                        403,
                        "reseller: a reseller token always creates its own customers",
                        field="reseller",
                        rule="admin only",
                    )
                reseller_id = caller.reseller_id
            else:
                reseller_id = reseller_id_of(uow, body.reseller) if body.reseller else None
            final = NewCustomer(  # names are looked up here, at the edge
                **fields,
                customer_class_id=customer_class_id_of(uow, body.customer_class),
                reseller_id=reseller_id,
                record=record,
            )
            customer = add_customer(uow, spec=final, now=app.clock.now(), actor=caller.actor)
            return customer_out(customer_lists.shown(uow, customer))

    return await call(work)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: CustomerId, request: Request, caller: Caller) -> CustomerOut:
    """One customer with its wallet balance."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            found = visible_customer(uow, caller, customer_id)
            return customer_out(
                found, caller, customer_pending.pending_of_customer(uow, customer_id)
            )

    return await call(work)


@router.get("/{customer_id}/wallet", response_model=WalletOut)
async def get_wallet(customer_id: CustomerId, request: Request, caller: Caller) -> WalletOut:
    """The wallet balance and its most recent postings."""
    app = container(request)

    def work() -> WalletOut:
        with app.uow() as uow:
            wallet = customer_lists.find_wallet(
                uow, caller.reader, customer_id, recent=RECENT_POSTINGS
            )
        if wallet is None:
            raise not_found("customer", customer_id)
        return WalletOut(
            customer_id=wallet.customer_id,
            balance=Amount.of(wallet.balance),
            postings=[
                PostingOut(
                    transaction_id=p.transaction_id,
                    kind=p.kind,
                    memo=p.memo,
                    amount=Amount.of(p.amount),
                    effective_at=p.effective_at,
                )
                for p in wallet.postings
            ],
        )

    return await call(work)


@router.get("/{customer_id}/ledger", response_model=Page[LedgerEntryOut])
async def list_ledger(
    customer_id: CustomerId,
    request: Request,
    caller: Caller,
    paging: Paging,
    kind: Annotated[EntryKind | None, Query()] = None,
) -> Page[LedgerEntryOut]:
    """The wallet's history, newest posting first, a page at a time."""
    app = container(request)

    def work() -> Page[LedgerEntryOut]:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
            found = customer_lists.ledger_entries(
                uow,
                caller.reader,
                customer_id,
                kind=kind.value if kind is not None else None,
                after=paging.after(newest_first=True),
                limit=paging.limit,
            )
        if found is None:
            raise not_found("customer", customer_id)
        return page_of(found, entry_out, newest_first=True)

    return await call(work)


@router.get("/{customer_id}/preview", response_model=PreviewOut)
async def preview_customer(
    customer_id: CustomerId,
    request: Request,
    caller: Caller,
    until: Annotated[
        Instant | None, Query(description="ISO 8601 instant with offset (default: now)")
    ] = None,
) -> PreviewOut:
    """What the engine would charge and change for this customer up to ``until``; writes
    nothing."""
    app = container(request)
    instant = until or app.clock.now()
    within_horizon(instant - app.clock.now(), "until")

    def work() -> PreviewOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
            outcome = preview(uow, customer_id=customer_id, until=instant)
            return PreviewOut(
                customer_id=customer_id,
                until=instant,
                balance=Amount.of(outcome.balance),
                charges=[charge_out(c) for c in outcome.charges],
                transitions=[transition_out(t) for t in outcome.transitions],
            )

    return await call(work)


def charge_out(c: Charge) -> ChargePreview:
    return ChargePreview(
        service_id=c.service_id,
        kind=c.kind.value,
        period_start=c.period.start,
        period_end=c.period.end,
        amount=Amount.of(c.gross),
        description=c.description,
    )


def transition_out(t: Transition) -> TransitionPreview:
    return TransitionPreview(
        service_id=t.service_id,
        from_state=t.from_state.value,
        to_state=t.to_state.value,
        reason=t.reason,
        at=t.at,
    )


@router.post("/{customer_id}/charge", response_model=ChargeAndInvoiceOut)
async def charge_customer(
    customer_id: CustomerId, request: Request, caller: Staff
) -> ChargeAndInvoiceOut:
    """Splynx "Charge & Invoice" (`ispbill charge`): charge what is due now and invoice it at
    once; a prepaid customer's invoice is issued paid from the wallet."""
    app = container(request)

    def work() -> ChargeAndInvoiceOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:  # a fresh unit of work: the lock is the write's first statement
            customer = lock_customer(uow, customer_id)
            result = charge_and_invoice(
                uow, customer=customer, now=app.clock.now(), actor=caller.actor
            )
            balance = cli_listings.balance_of(uow, customer_id)
        return ChargeAndInvoiceOut(
            customer_id=customer_id,
            charges=[charge_out(c) for c in result.outcome.charges],
            transitions=[transition_out(t) for t in result.outcome.transitions],
            invoice_number=result.invoice_number,
            balance=Amount.of(balance),
        )

    return await call(work)


@router.post("/{customer_id}/checkout", response_model=CheckoutOut, status_code=201)
async def checkout_customer(
    customer_id: CustomerId, body: CheckoutIn, request: Request, caller: Staff
) -> CheckoutOut:
    """Quote ``months`` periods of the customer's services and open a hosted checkout for it
    (`ispbill checkout`); the payer pays at ``url``, the gateway's webhook credits the wallet."""
    app = container(request)
    back = body.return_url or app.settings.public_base_url.rstrip("/") + "/"

    def work() -> CheckoutOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:
            started = start_checkout(
                uow,
                gateways=app.gateways,
                gateway=body.gateway,
                customer_id=customer_id,
                months=body.months,
                now=app.clock.now(),
                actor=caller.actor,
                return_url=back,
            )
        quote = started.quote
        assert quote is not None  # asked for months, so quoted
        return CheckoutOut(
            checkout=started.checkout.reference,
            url=started.url,
            quote=[
                QuoteLineOut(line=line.label, amount=Amount.of(line.amount)) for line in quote.lines
            ],
            total=Amount.of(quote.total),
        )

    return await call(work)


@router.patch("/{customer_id}", response_model=CustomerOut)
async def update_customer(
    customer_id: CustomerId, body: CustomerPatch, request: Request, caller: Staff
) -> CustomerOut:
    """Change the fields given, validated as on creation; one ``customer.updated`` event with
    the old and new values. Refused (nothing written) naming the field and the rule."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
            class_id = (
                customer_class_id_of(uow, body.customer_class)
                if body.customer_class is not None
                else None
            )
        changes = CustomerChanges(
            name=body.name,
            customer_class_id=class_id,
            credit_limit=body.credit_limit,
            minimum_balance=body.minimum_balance,
            use_credit_automatically=body.use_credit_automatically,
            grace_days=body.grace_days,
            locale=body.locale,
            notification_emails=body.notification_emails,
            custom_data=body.custom_data,
            business_model=body.business_model,
            billing_timezone=body.billing_timezone,
            billing_cycle=body.billing_cycle,
            cycle_n=body.cycle_n,
            invoicing_mode=body.invoicing_mode,
            record=ContactRecord(
                emails=body.emails,
                phones=body.phones,
                billing_address=body.billing_address,
                service_address=body.service_address,
                service_gps=body.service_gps,
                company_registration_number=body.company_registration_number,
                vat_id=body.vat_id,
                internal_notes=body.internal_notes,
            ),
        )
        with app.uow() as uow:
            row = edit_cases.update_customer(
                uow,
                customer_id=customer_id,
                changes=changes,
                now=app.clock.now(),
                actor=caller.actor,
                reason=body.reason,
            )
            return customer_out(
                customer_lists.shown(uow, row),
                caller,
                customer_pending.pending_of_customer(uow, row.id),
            )

    return await call(work)


@router.post("/changes/{change_id}/cancel", response_model=PendingChangeOut)
async def cancel_pending_change(
    change_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: CancelScheduledIn,
    request: Request,
    caller: Staff,
) -> PendingChangeOut:
    """Cancel a timezone, cycle or invoicing-mode change planned from the next period."""
    app = container(request)

    def work() -> PendingChangeOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_pending.change_customer(uow, change_id))
        with app.uow() as uow:
            done = customer_pending.cancel_change(
                uow,
                change_id=change_id,
                now=app.clock.now(),
                actor=caller.actor,
                reason=body.reason,
            )
            return pending_out(done)

    return await call(work)


@router.post("/{customer_id}/archive", response_model=CustomerOut)
async def archive_customer(
    customer_id: CustomerId, body: ArchiveIn, request: Request, caller: Staff
) -> CustomerOut:
    """Hide a customer whose services have all ended: its history stays, it takes no new
    services and leaves the default list (``?archived=true`` lists it)."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:
            row = edit_cases.archive_customer(
                uow,
                customer_id=customer_id,
                now=app.clock.now(),
                actor=caller.actor,
                reason=body.reason,
            )
            return customer_out(customer_lists.shown(uow, row), caller)

    return await call(work)


@router.post("/{customer_id}/restore", response_model=CustomerOut)
async def restore_customer(
    customer_id: CustomerId, body: ArchiveIn, request: Request, caller: Staff
) -> CustomerOut:
    """Bring an archived customer back."""
    app = container(request)

    def work() -> CustomerOut:
        with app.uow() as uow:
            require_customer(uow, caller, customer_id)
        with app.uow() as uow:
            row = edit_cases.restore_customer(
                uow,
                customer_id=customer_id,
                now=app.clock.now(),
                actor=caller.actor,
                reason=body.reason,
            )
            return customer_out(customer_lists.shown(uow, row), caller)

    return await call(work)
