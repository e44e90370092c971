"""SQLAlchemy 2 tables of ispbill: one schema for PostgreSQL and SQLite.

Amounts are BIGINT minor units next to an ISO 4217 code (never floats). Enumerations are short
strings guarded by CHECK constraints so both databases refuse values the domain does not know.
Constraints here back the domain rules (ARCHITECTURE invariants): unique names, one wallet per
customer and currency, idempotency keys, zero postings refused, credit limits only on postpaid
customers. The ledger tables are append-only; the migration adds triggers that refuse UPDATE
and DELETE on both databases.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ispbill.adapters.db.types import UTCDateTime
from ispbill.domain.bank import LineStatus
from ispbill.domain.calendar import CycleKind
from ispbill.domain.customers import (
    BalanceControl,
    BusinessModel,
    ContactKind,
    CustomerStatus,
    InvoicingMode,
)
from ispbill.domain.ledger import AccountKind, EntryKind
from ispbill.domain.lifecycle import (
    ServiceState,
    SuspensionReason,
    SuspensionSource,
    SuspensionStatus,
)
from ispbill.domain.notifications import NotificationStatus
from ispbill.domain.payments import CheckoutStatus, TopUpStatus
from ispbill.domain.plans import PLAN_FOLLOWS_CUSTOMER, FupAction
from ispbill.domain.radius import CommandStatus
from ispbill.domain.refill import CardStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: Any) -> str:
    """SQL for 'column is one of the enum's values', shared by both dialects."""
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Reseller(Base):
    __tablename__ = "resellers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class TaxProfileRow(Base):
    __tablename__ = "tax_profiles"
    __table_args__ = (CheckConstraint("rate_bp BETWEEN 0 AND 10000", name="rate_bp"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    rate_bp: Mapped[int] = mapped_column(Integer)
    inclusive: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerClass(Base):
    __tablename__ = "customer_classes"
    __table_args__ = (CheckConstraint("grace_days BETWEEN 0 AND 365", name="grace_days"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    invoice_template: Mapped[str] = mapped_column(String(100), default="default")
    tax_profile_id: Mapped[int | None] = mapped_column(ForeignKey("tax_profiles.id"))
    notification_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    # Overrides of the operator's collection policy for this class (use_cases/collections/non_payers.py).
    collection_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(one_of("balance_control", BalanceControl), name="balance_control"),
        CheckConstraint(one_of("business_model", BusinessModel), name="business_model"),
        CheckConstraint(one_of("invoicing_mode", InvoicingMode), name="invoicing_mode"),
        CheckConstraint(one_of("status", CustomerStatus), name="status"),
        CheckConstraint(one_of("cycle_kind", CycleKind), name="cycle_kind"),
        CheckConstraint(
            "credit_limit_minor IS NULL OR "
            "(balance_control = 'postpaid' AND credit_limit_minor >= 0)",
            name="credit_limit_postpaid",
        ),
        CheckConstraint(
            "minimum_balance_minor = 0 OR balance_control = 'prepaid'",
            name="minimum_balance_prepaid",
        ),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint("grace_days IS NULL OR grace_days BETWEEN 0 AND 365", name="grace_days"),
        CheckConstraint(
            "payment_terms_days IS NULL OR payment_terms_days BETWEEN 0 AND 365",
            name="payment_terms_days",
        ),
        # The console's search ("part of the name", ILIKE '%x%') on PostgreSQL: a trigram index
        # (pg_trgm); on SQLite a plain index, which a small installation does not miss.
        Index(
            "ix_customers_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("customer_classes.id"), index=True)
    business_model: Mapped[str] = mapped_column(String(32))
    balance_control: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    cycle_kind: Mapped[str] = mapped_column(String(32))
    cycle_n: Mapped[int] = mapped_column(Integer, default=1)
    cycle_anchor_day: Mapped[int | None] = mapped_column(Integer)
    cycle_origin: Mapped[date] = mapped_column(Date)
    billing_timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16), default="en_US")
    credit_limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    minimum_balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    invoicing_mode: Mapped[str] = mapped_column(String(16))
    use_credit_automatically: Mapped[bool] = mapped_column(Boolean, default=True)
    grace_days: Mapped[int | None] = mapped_column(Integer)
    # The customer's own payment terms (days from issue to due), overriding the operator-wide
    # ``payment_terms_days`` setting when set.
    payment_terms_days: Mapped[int | None] = mapped_column(Integer)
    invoice_template: Mapped[str | None] = mapped_column(String(100))
    tax_profile_id: Mapped[int | None] = mapped_column(ForeignKey("tax_profiles.id"))
    notification_emails: Mapped[list[str] | None] = mapped_column(JSON)
    custom_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.ACTIVE.value)
    created_at: Mapped[datetime]
    # Collections (use_cases/collections/non_payers.py): when the non-payer policy must look at this
    # customer next (NULL: only a payment, an invoice or a policy change can matter), the end
    # of a promise to pay, the billing period of the subscriber's last own promise, and the
    # last reminder sent (so each is sent once).
    collection_review_at: Mapped[datetime | None] = mapped_column(index=True)
    promise_until: Mapped[datetime | None]
    self_promise_period: Mapped[date | None] = mapped_column(Date)
    collection_reminder: Mapped[str | None] = mapped_column(String(200))
    # The record an ISP keeps (issue 17): addresses, the service location's GPS in integer
    # microdegrees (no floats), the company's numbers, notes never shown to the subscriber;
    # contact e-mails and phones are rows of customer_contacts. An archived customer keeps its
    # history, takes no new services and leaves the default lists.
    billing_address: Mapped[str | None] = mapped_column(Text)
    service_address: Mapped[str | None] = mapped_column(Text)
    service_latitude_microdeg: Mapped[int | None] = mapped_column(Integer)
    service_longitude_microdeg: Mapped[int | None] = mapped_column(Integer)
    company_registration_number: Mapped[str | None] = mapped_column(String(64))
    vat_id: Mapped[str | None] = mapped_column(String(32))
    internal_notes: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None]

    customer_class: Mapped[CustomerClass] = relationship(lazy="joined")
    reseller: Mapped[Reseller | None] = relationship()
    contacts: Mapped[list[CustomerContact]] = relationship(
        order_by="CustomerContact.id", cascade="all, delete-orphan", lazy="selectin"
    )


class CustomerContact(Base):
    """One contact e-mail or phone of a customer; at most one of each kind is primary (the
    address collections e-mail reaches when the customer has no portal login)."""

    __tablename__ = "customer_contacts"
    __table_args__ = (
        CheckConstraint(one_of("kind", ContactKind), name="kind"),
        UniqueConstraint("customer_id", "kind", "value", name="uq_customer_contacts_value"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(254))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="price"),
        CheckConstraint("download_kbps > 0 AND upload_kbps > 0", name="speed"),
        CheckConstraint(
            f"cycle_kind = '{PLAN_FOLLOWS_CUSTOMER}' OR " + one_of("cycle_kind", CycleKind),
            name="cycle_kind",
        ),
        CheckConstraint("cycle_n >= 1", name="cycle_n"),
        CheckConstraint("length(currency) = 3", name="currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    cycle_kind: Mapped[str] = mapped_column(String(32))
    cycle_n: Mapped[int] = mapped_column(Integer, default=1)
    download_kbps: Mapped[int] = mapped_column(Integer)
    upload_kbps: Mapped[int] = mapped_column(Integer)
    tax_profile_id: Mapped[int | None] = mapped_column(ForeignKey("tax_profiles.id"))
    period_options: Mapped[list[dict[str, int]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]  # archived: not active, hidden from default lists

    fup_tiers: Mapped[list[PlanFupTier]] = relationship(
        order_by="PlanFupTier.tier", cascade="all, delete-orphan", lazy="selectin"
    )
    # The price history, oldest first; the engine prices each billing period by the row in
    # effect on its first day (issue 17). Loaded with the plan: every snapshot needs it.
    prices: Mapped[list[PlanPrice]] = relationship(
        order_by="PlanPrice.valid_from", cascade="all, delete-orphan", lazy="selectin"
    )


class PlanPrice(Base):
    """One price of a plan from a day (``valid_from``) up to the next one's (``valid_to``,
    exclusive); the current price is the row without an end. Rows are never edited but to
    close them: charged periods keep the figures they were charged with."""

    __tablename__ = "plan_prices"
    __table_args__ = (
        UniqueConstraint("plan_id", "valid_from", name="uq_plan_prices_plan_from"),
        CheckConstraint("price_minor >= 0", name="price"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="valid_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]  # who and why: the plan.price_changed event


class PlanFupTier(Base):
    __tablename__ = "plan_fup_tiers"
    __table_args__ = (
        UniqueConstraint("plan_id", "tier", name="uq_plan_fup_tiers_plan_tier"),
        CheckConstraint("tier BETWEEN 1 AND 4", name="tier"),
        CheckConstraint("limit_bytes > 0", name="limit_bytes"),
        CheckConstraint(one_of("action", FupAction), name="action"),
        CheckConstraint(
            "(action = 'throttle' AND down_kbps > 0 AND up_kbps > 0) OR "
            "(action = 'suspend' AND down_kbps IS NULL AND up_kbps IS NULL)",
            name="throttle_speed",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    tier: Mapped[int] = mapped_column(Integer)
    limit_bytes: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    down_kbps: Mapped[int | None] = mapped_column(Integer)
    up_kbps: Mapped[int | None] = mapped_column(Integer)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint(one_of("state", ServiceState), name="state"),
        CheckConstraint(
            "invoicing_mode IS NULL OR " + one_of("invoicing_mode", InvoicingMode),
            name="invoicing_mode",
        ),
        CheckConstraint("active_to IS NULL OR active_to > active_from", name="active_range"),
        CheckConstraint("period_months IS NULL OR period_months >= 1", name="period_months"),
        CheckConstraint(
            "(throttle_down_kbps IS NULL AND throttle_up_kbps IS NULL) OR "
            "(throttle_down_kbps > 0 AND throttle_up_kbps > 0)",
            name="throttle",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    active_from: Mapped[date] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)
    period_months: Mapped[int | None] = mapped_column(Integer)
    invoicing_mode: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(String(32))
    state_since: Mapped[datetime]
    created_at: Mapped[datetime]
    # The billing position: the engine's cursor through time (see domain/billing.py).
    cycle_origin: Mapped[date] = mapped_column(Date)
    anchor_day: Mapped[int | None] = mapped_column(Integer)
    billed_until: Mapped[date | None] = mapped_column(Date)
    deactivated_on: Mapped[date | None] = mapped_column(Date)
    next_due_at: Mapped[datetime | None] = mapped_column(index=True)
    # The collection throttle in force (NULL = not throttled), read by the RADIUS reply.
    throttle_down_kbps: Mapped[int | None] = mapped_column(Integer)
    throttle_up_kbps: Mapped[int | None] = mapped_column(Integer)

    customer: Mapped[Customer] = relationship()
    plan: Mapped[Plan] = relationship(lazy="joined")


class ServiceSuspension(Base):
    """One suspension of a service (ISPadmin client card): its reason, whether invoicing is
    suspended too, an optional FROM-TO window (last day included) that may repeat yearly, and
    how it ended. ``next_change_at`` is when the tick must start or end it."""

    __tablename__ = "service_suspensions"
    __table_args__ = (
        CheckConstraint(one_of("reason", SuspensionReason), name="reason"),
        CheckConstraint(one_of("status", SuspensionStatus), name="status"),
        CheckConstraint(one_of("source", SuspensionSource), name="source"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="window"),
        CheckConstraint("NOT repeat_yearly OR ends_on IS NOT NULL", name="repeat_needs_end"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    suspend_invoicing: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    repeat_yearly: Mapped[bool] = mapped_column(Boolean, default=False)
    # With invoicing suspended: how far the service was already charged in advance when the
    # suspension was entered; the window's days before it are credited when it ends.
    charged_until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    next_change_at: Mapped[datetime | None] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    lifted_at: Mapped[datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(String(100))


class InfoPage(Base):
    """The walled-garden page of one suspension reason: operator-edited Markdown."""

    __tablename__ = "info_pages"
    __table_args__ = (CheckConstraint(one_of("reason", SuspensionReason), name="reason"),)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body_markdown: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))


class ServiceAddOn(Base):
    """A recurring extra attached to a service (a static IP at 3.00 a period): charged with the
    service's periods by the tick, prorated by days like the plan (``domain/billing.AddOn``)."""

    __tablename__ = "service_addons"
    __table_args__ = (
        CheckConstraint("price_minor > 0", name="price"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="window"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    description: Mapped[str] = mapped_column(String(300))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    tax_profile_id: Mapped[int | None] = mapped_column(ForeignKey("tax_profiles.id"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)  # the last day charged
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))


class DiscountRow(Base):
    """A discount (issue 17): a percent or a fixed amount off one service's or every service of
    a customer's periods, for N periods or until a date (``domain/discounts.py``). Ending it
    sets ``ended_on``: no period starting after that day is discounted."""

    __tablename__ = "discounts"
    __table_args__ = (
        CheckConstraint("(percent IS NULL) <> (amount_minor IS NULL)", name="percent_or_amount"),
        CheckConstraint("percent IS NULL OR (percent >= 1 AND percent <= 100)", name="percent"),
        CheckConstraint("amount_minor IS NULL OR amount_minor > 0", name="amount"),
        CheckConstraint("(periods IS NULL) <> (until IS NULL)", name="periods_or_until"),
        CheckConstraint("periods IS NULL OR periods > 0", name="periods"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"), index=True)
    percent: Mapped[int | None] = mapped_column(Integer)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    periods: Mapped[int | None] = mapped_column(Integer)
    until: Mapped[date | None] = mapped_column(Date)
    starts_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))


class ScheduledChange(Base):
    """A plan change or a termination planned for a future day (issue 17), carried out by the
    tick when it is due, cancellable until then (``use_cases/billing/scheduled_changes.py``)."""

    __tablename__ = "scheduled_changes"
    __table_args__ = (
        CheckConstraint("kind IN ('plan_change', 'termination')", name="kind"),
        CheckConstraint("status IN ('planned', 'done', 'cancelled', 'failed')", name="status"),
        CheckConstraint("(kind = 'plan_change') = (plan_id IS NOT NULL)", name="plan"),
        Index("ix_scheduled_changes_status_due_at", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    # the first day of the change: the new plan's first day, or the day after the last day
    effective_on: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]  # its local midnight in the customer's billing timezone
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    # a termination sets the service's "active to" to its last day; a cancellation restores it
    previous_active_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))


class CustomerPendingChange(Base):
    """A customer's billing timezone, cycle or invoicing mode changed while a service runs: it
    takes effect from the customer's next billing period (``effective_on``, whose local
    midnight is ``due_at``), applied by the tick (``use_cases/catalog/pending_changes.py``).
    One planned change per field; a new edit replaces it."""

    __tablename__ = "customer_pending_changes"
    __table_args__ = (
        CheckConstraint(
            "field IN ('billing_timezone', 'billing_cycle', 'invoicing_mode')", name="field"
        ),
        CheckConstraint("status IN ('planned', 'done', 'cancelled')", name="status"),
        Index("ix_customer_pending_changes_status_due_at", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    # the customer's columns to set, as JSON values (a cycle: kind, n, anchor day, origin)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON)
    old_value: Mapped[str] = mapped_column(String(100))
    new_value: Mapped[str] = mapped_column(String(100))
    effective_on: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))


class Charge(Base):
    """The debit of one service for one period: unique per (service, period start) for period
    charges and per (add-on, period start) for add-on charges. A one-off extra charge
    (``extra``) may name no service."""

    __tablename__ = "charges"
    __table_args__ = (
        Index(
            "uq_charges_service_period",
            "service_id",
            "period_start",
            unique=True,
            postgresql_where=text("kind = 'period'"),
            sqlite_where=text("kind = 'period'"),
        ),
        Index(
            "uq_charges_addon_period",
            "addon_id",
            "period_start",
            unique=True,
            postgresql_where=text("kind = 'addon'"),
            sqlite_where=text("kind = 'addon'"),
        ),
        CheckConstraint("period_end > period_start", name="period"),
        CheckConstraint("gross_minor = net_minor + tax_minor", name="gross"),
        CheckConstraint("quantity_num > 0 AND quantity_den > 0", name="quantity"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    addon_id: Mapped[int | None] = mapped_column(ForeignKey("service_addons.id"))
    discount_id: Mapped[int | None] = mapped_column(ForeignKey("discounts.id"), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    quantity_num: Mapped[int] = mapped_column(Integer)
    quantity_den: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    tax_inclusive: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(String(300))
    charged_at: Mapped[datetime]
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)


class InvoiceCounter(Base):
    """One gapless counter per series bucket, taken under a row lock with the invoice."""

    __tablename__ = "invoice_counters"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("number", name="uq_invoices_number"),
        UniqueConstraint("idempotency_key", name="uq_invoices_idempotency_key"),
        CheckConstraint("gross_minor = net_minor + tax_minor", name="gross"),
        CheckConstraint("paid_minor >= 0 AND paid_minor <= gross_minor", name="paid"),
        # the console's invoice list: newest first by id, filtered by status or issue day
        Index("ix_invoices_status_id", "status", "id"),
        Index("ix_invoices_issue_date", "issue_date"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    issued_at: Mapped[datetime]

    lines: Mapped[list[InvoiceLineRow]] = relationship(
        order_by="InvoiceLineRow.position", lazy="selectin"
    )
    customer: Mapped[Customer] = relationship()


class InvoiceLineRow(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (CheckConstraint("gross_minor = net_minor + tax_minor", name="gross"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(300))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    quantity_num: Mapped[int] = mapped_column(Integer)
    quantity_den: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    tax_inclusive: Mapped[bool] = mapped_column(Boolean)
    kind: Mapped[str] = mapped_column(String(16), default="charge", server_default="charge")


class Payment(Base):
    """Money received; unique by idempotency key and by (customer, method, external reference):
    a reference is the payer's, and real bank data repeats references across payers."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
        UniqueConstraint(
            "customer_id", "method", "reference", name="uq_payments_customer_method_reference"
        ),
        CheckConstraint("amount_minor > 0", name="amount"),
        Index("ix_payments_received_at", "received_at"),  # the payments list by received day
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    method: Mapped[str] = mapped_column(String(32))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(140))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"))
    reversed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))
    actor: Mapped[str] = mapped_column(String(100))


class Allocation(Base):
    """A payment or existing credit applied to an invoice (documents matching, not money)."""

    __tablename__ = "allocations"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="amount"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # Set when the payment behind it is reversed: the invoice's paid amount is then recomputed
    # from the allocations still standing (matching is undone by marking, never by deleting).
    reversed_at: Mapped[datetime | None]


class SettingRow(Base):
    """Operator settings as typed JSON values (validated by ispbill.settings_store)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(one_of("kind", AccountKind), name="kind"),
        CheckConstraint(
            "(kind = 'wallet') = (customer_id IS NOT NULL)", name="wallet_has_customer"
        ),
        CheckConstraint("length(currency) = 3", name="currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (CheckConstraint(one_of("kind", EntryKind), name="kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str] = mapped_column(Text, default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime]
    effective_at: Mapped[datetime]

    postings: Mapped[list[LedgerPosting]] = relationship(lazy="selectin")


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount_minor <> 0", name="nonzero"),
        CheckConstraint("length(currency) = 3", name="currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    account: Mapped[LedgerAccount] = relationship(lazy="joined")


class Event(Base):
    """Every state change: who, what, why, with the figures behind it."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject_type", "subject_id"),
        Index("ix_events_kind_id", "kind", "id"),  # the event log filtered by kind, newest first
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed for set-based statements (executemany updates)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class RefillCardBatch(Base):
    """Refill cards issued together: one ledger entry, written once to a CSV and a PDF sheet."""

    __tablename__ = "refill_card_batches"
    __table_args__ = (
        CheckConstraint("card_count > 0", name="card_count"),
        CheckConstraint("value_minor > 0", name="value"),
        CheckConstraint("length(currency) = 3", name="currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8))
    card_count: Mapped[int] = mapped_column(Integer)
    value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_on: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))

    @property
    def name(self) -> str:
        """What operators see and type, and the name of the batch's files: ``RC00012``."""
        return f"{self.prefix}{self.id:05d}"


class RefillCard(Base):
    """One card: its serial (public) and the HMAC of its code (the code itself is never stored).

    Only ``active`` cards are a liability; the status moves once, to redeemed, voided or expired,
    by a conditional UPDATE, so a card is used at most once even when redemptions race.
    """

    __tablename__ = "refill_cards"
    __table_args__ = (
        CheckConstraint(one_of("status", CardStatus), name="status"),
        CheckConstraint("value_minor > 0", name="value"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint(
            "(status = 'redeemed') = (redeemed_at IS NOT NULL AND customer_id IS NOT NULL)",
            name="redeemed",
        ),
        CheckConstraint("(status = 'voided') = (voided_at IS NOT NULL)", name="voided"),
        CheckConstraint("(status = 'expired') = (expired_at IS NOT NULL)", name="expired"),
        Index("ix_refill_cards_status_expires_at", "status", "expires_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("refill_card_batches.id"), index=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    expires_on: Mapped[date | None] = mapped_column(Date)
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=CardStatus.ACTIVE.value)
    created_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    voided_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]


class RedemptionAttempt(Base):
    """A failed redemption, kept for throttling per customer and per source (never the code)."""

    __tablename__ = "redemption_attempts"
    __table_args__ = (
        Index("ix_redemption_attempts_customer_at", "customer_id", "attempted_at"),
        Index("ix_redemption_attempts_source_at", "source", "attempted_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    source: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(32))
    attempted_at: Mapped[datetime]


class BankStatementLine(Base):
    """One entry of an imported bank statement (CSV, camt.053 or MT940).

    Every line read is kept, keyed by the bank's transaction id (or a stable hash when the bank
    gives none), so importing the same file twice creates nothing new. A credit matched to a
    customer becomes a payment; an unmatched credit waits here for an operator to assign it; a
    debit (money going out) is kept as ``ignored``.
    """

    __tablename__ = "bank_statement_lines"
    __table_args__ = (
        UniqueConstraint("external_id", name="uq_bank_statement_lines_external_id"),
        CheckConstraint(one_of("status", LineStatus), name="status"),
        CheckConstraint("(status = 'matched') = (payment_id IS NOT NULL)", name="matched"),
        CheckConstraint("length(currency) = 3", name="currency"),
        Index("ix_bank_statement_lines_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(140))
    file_hash: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    line_index: Mapped[int] = mapped_column(Integer)
    account: Mapped[str | None] = mapped_column(String(64))
    booked_on: Mapped[date] = mapped_column(Date)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(140))
    counterparty_iban: Mapped[str | None] = mapped_column(String(64))
    counterparty_name: Mapped[str | None] = mapped_column(String(200))
    bank_transaction_id: Mapped[str | None] = mapped_column(String(140))
    description: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    imported_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(100))


class CheckoutRow(Base):
    """A payment page opened at a gateway: pay N months, or a one-off wallet top-up.

    ``reference`` is ispbill's own id, sent to the gateway as metadata so every event about the
    checkout (Stripe sends one for the session and one for its payment intent) finds this row;
    the payment it produces is keyed by the gateway's checkout id, so it is credited once.
    """

    __tablename__ = "checkouts"
    __table_args__ = (
        UniqueConstraint("gateway", "external_id", name="uq_checkouts_gateway_external_id"),
        CheckConstraint("purpose IN ('pay_months', 'top_up')", name="purpose"),
        CheckConstraint(one_of("status", CheckoutStatus), name="status"),
        CheckConstraint("amount_minor > 0", name="amount"),
        CheckConstraint("months IS NULL OR months >= 1", name="months"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint("(status = 'completed') = (payment_id IS NOT NULL)", name="completed"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    gateway: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(16))
    months: Mapped[int | None] = mapped_column(Integer)
    quote: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(100))


class WebhookEventRow(Base):
    """Every verified gateway event, once: a replayed delivery finds its row and does nothing.

    Refused deliveries (bad signature, stale timestamp) are never stored: an unauthenticated
    request must not be able to write anything.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("gateway", "event_id", name="uq_webhook_events_gateway_event_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    external_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))


class TopUpRule(Base):
    """Automatic top-up of one wallet (CRM.COM): when a charge takes the balance under
    ``threshold_minor``, ``amount_minor`` is charged to the saved payment method.

    ``armed_at``: only charges recorded from then on trigger, so creating or changing a rule
    never fires on a crossing that happened before it.
    """

    __tablename__ = "top_up_rules"
    __table_args__ = (
        UniqueConstraint("customer_id", "currency", name="uq_top_up_rules_customer_currency"),
        CheckConstraint("amount_minor > 0", name="amount"),
        CheckConstraint("length(currency) = 3", name="currency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    threshold_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(String(32))
    method_reference: Mapped[str] = mapped_column(String(255))
    gateway_customer_reference: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    armed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TopUpAttempt(Base):
    """One request to the gateway for one trigger (the charge that crossed the threshold).

    Unique per (trigger, attempt number): a trigger is topped up at most once per attempt, and a
    new attempt exists only after the previous one failed and its back-off passed.
    """

    __tablename__ = "top_up_attempts"
    __table_args__ = (
        UniqueConstraint("trigger_key", "attempt_no", name="uq_top_up_attempts_trigger_attempt"),
        UniqueConstraint("gateway", "gateway_charge_id", name="uq_top_up_attempts_gateway_charge"),
        CheckConstraint(one_of("status", TopUpStatus), name="status"),
        CheckConstraint("attempt_no >= 1", name="attempt_no"),
        CheckConstraint("amount_minor > 0", name="amount"),
        CheckConstraint("length(currency) = 3", name="currency"),
        CheckConstraint("(status = 'succeeded') = (payment_id IS NOT NULL)", name="succeeded"),
        Index("ix_top_up_attempts_status_retry", "status", "next_retry_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("top_up_rules.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(120))
    attempt_no: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    gateway: Mapped[str] = mapped_column(String(32))
    gateway_charge_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    next_retry_at: Mapped[datetime | None]
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    requested_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token of the REST API: only its SHA-256 is stored; the plaintext is shown once.

    A ``customer`` token is a portal session: it belongs to one customer, sees only that
    customer's data and expires (``expires_at``); the other roles never expire on their own.
    """

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'reseller', 'readonly', 'customer')", name="role"),
        CheckConstraint("(role = 'reseller') = (reseller_id IS NOT NULL)", name="reseller"),
        CheckConstraint("(role = 'customer') = (customer_id IS NOT NULL)", name="customer"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first answer to an API request sent with an ``Idempotency-Key``, for replays.

    ``status`` 0 marks a request in flight (a concurrent retry is told so); records older than
    the ``idempotency_ttl_hours`` setting are purged (``created_at`` is indexed for that).
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("token_id", "key", name="uq_idempotency_records_token_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    method_path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(index=True)


# --- Network enforcement (FreeRADIUS, CoA outbox, FUP usage) ----------------------------------


class NasRow(Base):
    """A network access server (router, BNG, hotspot) FreeRADIUS hears from and ispbill sends
    CoA/Disconnect to. The shared secret is kept readable: both clients.conf and every CoA
    packet need it."""

    __tablename__ = "nas"
    __table_args__ = (
        CheckConstraint("vendor IN ('mikrotik', 'generic')", name="vendor"),
        CheckConstraint("coa_port BETWEEN 1 AND 65535", name="coa_port"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(45), unique=True)
    secret: Mapped[str] = mapped_column(String(128))
    coa_port: Mapped[int] = mapped_column(Integer, default=3799)
    vendor: Mapped[str] = mapped_column(String(16))
    require_message_authenticator: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class NetworkIdentity(Base):
    """How a service shows up on the network: PPPoE/hotspot username and password, or a MAC /
    circuit id for IPoE, an optional static address, and the NAS it lives on."""

    __tablename__ = "network_identities"
    __table_args__ = (
        CheckConstraint("password_scheme IN ('cleartext', 'ssha512')", name="password_scheme"),
        CheckConstraint(
            "username IS NOT NULL OR mac_address IS NOT NULL OR circuit_id IS NOT NULL",
            name="some_identity",
        ),
        CheckConstraint("(username IS NULL) = (password IS NULL)", name="password"),
    )
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), primary_key=True)
    username: Mapped[str | None] = mapped_column(String(253), unique=True)
    password: Mapped[str | None] = mapped_column(String(255))
    password_scheme: Mapped[str] = mapped_column(String(16), default="cleartext")
    mac_address: Mapped[str | None] = mapped_column(String(17), unique=True)
    circuit_id: Mapped[str | None] = mapped_column(String(253), unique=True)
    static_ip: Mapped[str | None] = mapped_column(String(45), unique=True)
    nas_id: Mapped[int | None] = mapped_column(ForeignKey("nas.id"), index=True)
    updated_at: Mapped[datetime]


class RadiusSession(Base):
    """One accounting session, keyed by the NAS and its Acct-Session-Id. Counters only grow;
    a stopped session is never reopened (a late Interim-Update changes nothing)."""

    __tablename__ = "radius_sessions"
    __table_args__ = (
        UniqueConstraint("session_key", name="uq_radius_sessions_session_key"),
        CheckConstraint("input_bytes >= 0 AND output_bytes >= 0", name="counters"),
        Index("ix_radius_sessions_open_nas", "nas_address", "stopped_at"),
        Index("ix_radius_sessions_service_open", "service_id", "stopped_at"),
        Index("ix_radius_sessions_framed_ip", "framed_ip", "stopped_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_key: Mapped[str] = mapped_column(String(300))
    acct_session_id: Mapped[str] = mapped_column(String(253))
    nas_address: Mapped[str] = mapped_column(String(45))
    nas_id: Mapped[int | None] = mapped_column(ForeignKey("nas.id"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id"))
    username: Mapped[str | None] = mapped_column(String(253))
    framed_ip: Mapped[str | None] = mapped_column(String(45))
    calling_station_id: Mapped[str | None] = mapped_column(String(253))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    input_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    session_seconds: Mapped[int] = mapped_column(Integer, default=0)
    terminate_cause: Mapped[str | None] = mapped_column(String(64))


class UsageRecord(Base):
    """Data used by one service in one billing period (FUP, ISPadmin tariffs); a new period
    starts a new record, which is the reset. ``tier`` is the highest FUP tier applied."""

    __tablename__ = "usage_records"
    __table_args__ = (
        UniqueConstraint("service_id", "period_start", name="uq_usage_records_service_period"),
        CheckConstraint("bytes_total >= 0", name="bytes_total"),
        CheckConstraint("tier BETWEEN 0 AND 4", name="tier"),
        CheckConstraint("period_end > period_start", name="period"),
        Index("ix_usage_records_reset", "tier", "period_ends_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    period_starts_at: Mapped[datetime]
    period_ends_at: Mapped[datetime]
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    tier: Mapped[int] = mapped_column(Integer, default=0)
    # the speed the applied throttle tiers impose (authorize reads it without the tiers)
    throttle_down_kbps: Mapped[int | None] = mapped_column(Integer)
    throttle_up_kbps: Mapped[int | None] = mapped_column(Integer)
    reset_done: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime]


class OutboxCommand(Base):
    """An access change that must reach the network (ARCHITECTURE invariant 6), written in the
    same transaction as the event that caused it and worked off by the enforcement worker
    until every open session of the service has answered (or the attempts run out)."""

    __tablename__ = "enforcement_outbox"
    __table_args__ = (
        CheckConstraint(one_of("status", CommandStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_enforcement_outbox_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    event_kind: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=CommandStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # per session: {"<session key>": {"packet": "coa", "answer": "ack", ...}}
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Notification(Base):
    """A message to a customer (a collection reminder, suspension or restoration notice), written
    in the same transaction as its event and delivered by the mail sender
    (``use_cases/notifications/mail_outbox.py``) outside it, retried until the relay takes it or the attempts
    run out. ``key`` makes each occurrence one message.
    The text is rendered when sent, from ``figures`` in the customer's ``locale``."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(one_of("status", NotificationStatus), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(250), unique=True)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(16))
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class RadiusAnswer(Base):
    """A precomputed RADIUS answer line, in the radcheck/radreply shape FreeRADIUS's rlm_sql
    reads: what ``domain/radius.build_reply`` answers for a login, per NAS vendor. Kept equal
    to the committed state by the unit of work's pre-commit step
    (``use_cases/network/radius_answers.py``), so FreeRADIUS can authorize from the database
    without the HTTP hop."""

    __tablename__ = "radius_answers"
    __table_args__ = (
        CheckConstraint("kind IN ('check', 'reply')", name="kind"),
        CheckConstraint("vendor IN ('mikrotik', 'generic')", name="vendor"),
        Index("ix_radius_answers_lookup", "username", "vendor", "kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    username: Mapped[str] = mapped_column(String(253))
    vendor: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    attribute: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(2))
    value: Mapped[str] = mapped_column(String(253))


# -- web console and customer portal (migration 0008) -----------------------------------------

STAFF_ROLES = ("admin", "reseller", "readonly")


class StaffUser(Base):
    """A person who signs in to the operator console; roles as the API's tokens."""

    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'reseller', 'readonly')", name="role"),
        CheckConstraint("(role = 'reseller') = (reseller_id IS NOT NULL)", name="reseller"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    reseller_id: Mapped[int | None] = mapped_column(ForeignKey("resellers.id"), index=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # the RFC 6238 time step (unix time // 30) of the last code that signed in: a code is good
    # once, so only a later step is accepted
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    locale: Mapped[str] = mapped_column(String(16), default="en_US")
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class PortalAccount(Base):
    """How a customer signs in to the portal: an e-mail address and an optional password."""

    __tablename__ = "portal_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class WebSession(Base):
    """A signed-in browser: the cookie holds a random secret, the row its SHA-256."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('staff', 'customer')", name="kind"),
        CheckConstraint(
            "(kind = 'staff') = (staff_id IS NOT NULL AND customer_id IS NULL)", name="owner"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class LoginToken(Base):
    """A one-time sign-in link e-mailed to a customer (only its SHA-256 is kept)."""

    __tablename__ = "login_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginAttempt(Base):
    """A failed sign-in, kept for throttling per account name and per source address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_subject_at", "subject", "attempted_at"),
        Index("ix_login_attempts_source_at", "source", "attempted_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    source: Mapped[str | None] = mapped_column(String(100))
    attempted_at: Mapped[datetime]


class TickRun(Base):
    """One run of the scheduled tick (a periodic plan or one asked for through the API): the
    record both databases keep of it. On PostgreSQL its plan and range jobs are procrastinate
    jobs (``job_id`` is the plan's); on SQLite the in-process scheduler runs it. ``figures``
    adds up the committed ranges' reports."""

    __tablename__ = "tick_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("ranges_done >= 0 AND ranges_failed >= 0", name="ranges"),
        Index("ix_tick_runs_status", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # schedule or request
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="queued")
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    now: Mapped[datetime | None]  # the instant the run ticks up to, fixed by its plan
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    ranges_total: Mapped[int | None] = mapped_column(Integer)
    ranges_done: Mapped[int] = mapped_column(Integer, default=0)
    ranges_failed: Mapped[int] = mapped_column(Integer, default=0)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_error: Mapped[str | None] = mapped_column(Text)
