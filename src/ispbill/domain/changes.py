"""Mid-period changes: a plan change or a termination, prorated by days.

The issue ("Billing and lifecycle engine", item 2): "mid-period changes (plan change,
termination) are prorated by days, with the remainder rule of the Money type; an upgrade charges
the difference for the rest of the period, a downgrade or termination credits the unused part
through a credit note." And invoices are "immutable once issued; corrections by credit notes."

This module prices a change; it writes nothing (``use_cases/billing/plan_changes.py`` stores the result). Pure:
dates and instants are passed in.

Rules, each with why:

* Effective from its date. A change is dated with a local date (the customer's billing
  timezone); that day and the days after it belong to the new plan (or, for a termination, to
  nobody). The date may not be later than today: a future change is planned as a scheduled
  change (``use_cases/billing/scheduled_changes.py``) and priced here when the tick carries it
  out, so the plan a service is on is what the network grants now. It may be earlier (an operator
  records a change the customer asked for a few days ago), but never before the start of the
  last charged period: a closed period is never repriced (ARCHITECTURE invariant 2: corrections
  are new entries about the present, not edits of the past).
* Charged in advance (forward invoicing, and every prepaid service: "pay first"). The days
  ``[effective, billed_until)`` were paid at the old price and are unused. The credit gives them
  back: the charge's unit price times the unused share of its quantity, rounded once, half-up
  (``invoicing.prorated_credit_line``, the credit-note rule: from the unit price, never from the
  rounded amount, so a credit of the whole charged span is exactly what was charged). A plan
  change then charges the new price for the same days: the same quantity, rounded once. An
  upgrade (charge > credit) makes the customer pay the difference, a downgrade leaves a net
  credit; both amounts are stored and documented, and the net is their exact difference.
  A termination is the credit alone. Days not yet charged (a pending or deactivated service,
  a period that has not started) are neither credited nor charged: the engine bills them later
  on the plan then in force.
* The remainder rule of the Money type: a split's parts sum exactly to the whole. The credited
  part is the one rounded; what the customer keeps paying of the charged span (``kept``) is the
  charge minus the credit, never rounded on its own, so kept + credited = charged to the minor
  unit (and likewise for net and tax, because the credit's tax is split once from its amount).
* Charged in arrears (backward invoicing, postpaid): nothing of the running period is charged
  yet, so nothing is credited. The used days ``[billed_until, effective)`` are charged now at the
  old price, prorated by the days of the full period exactly as the engine prices a period cut
  short (``billing.price_period``). A termination charges that and nothing else; a plan change
  moves the service's billing position to the effective date, and the engine charges the new
  plan for the rest of the period at its end (prorated the same way), then whole periods.
* Only days a service is billed for count: a paused, deactivated or pending service accrues
  nothing in arrears (the engine bills only active and suspended services), and a period is
  never charged past "active to".
* A plan change keeps the service's billing cycle (the unused days are priced at the new plan's
  price per period of that cycle); a plan billed on another cycle is a new service.
* Prepaid: "pay first". An upgrade whose difference the wallet cannot cover (keeping the minimum
  balance) is refused before anything is written; a prepaid wallet never goes into debt.
* A zero amount (a free plan) is no charge and no credit: the ledger refuses zero postings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from ispbill.domain.billing import (
    Charge,
    ChargeKind,
    CustomerSnapshot,
    ServiceSnapshot,
    ServiceTerms,
    current_period,
    first_billing_start,
    price_period,
)
from ispbill.domain.calendar import Period
from ispbill.domain.customers import InvoicingMode
from ispbill.domain.errors import ValidationError
from ispbill.domain.invoicing import InvoiceLine, prorated_credit_line
from ispbill.domain.lifecycle import ServiceState
from ispbill.domain.money import Money
from ispbill.domain.taxes import TaxSplit, split_tax

# The states in which a service accrues days billed in arrears (the engine's _next_billing_due).
ACCRUING = frozenset({ServiceState.ACTIVE, ServiceState.SUSPENDED})
UNUSED_SUFFIX = " (unused days)"  # a credit note line: the credited charge's text, then this


class ChangeKind(StrEnum):
    PLAN_CHANGE = "plan_change"
    TERMINATION = "termination"


@dataclass(frozen=True, slots=True)
class ChangeQuote:
    """What a change costs: at most one credit (old terms, unused days) and one charge.

    ``charge`` is the new plan's price for the unused days (charged in advance) or the old
    plan's used days (charged in arrears). ``billed_until`` is the service's billing position
    after the change. ``kept`` is what stays charged of the credited span (its remainder).
    """

    kind: ChangeKind
    service_id: int
    effective: date
    in_advance: bool
    currency: str
    credit: Charge | None = None
    credit_line: InvoiceLine | None = None
    charge: Charge | None = None
    billed_until: date | None = None
    kept: Money | None = None

    @property
    def credit_amount(self) -> Money:
        return self.credit.gross if self.credit is not None else Money.zero(self.currency)

    @property
    def charge_amount(self) -> Money:
        return self.charge.gross if self.charge is not None else Money.zero(self.currency)

    @property
    def net(self) -> Money:
        """What the change costs the customer: positive is owed, negative is given back."""
        return self.charge_amount - self.credit_amount

    def figures(self) -> dict[str, str | None]:
        """The amounts behind the change, for its event."""
        return {
            "effective": self.effective.isoformat(),
            "charged": "in_advance" if self.in_advance else "in_arrears",
            "credit": str(self.credit_amount),
            "credit_period": _span(self.credit),
            "charge": str(self.charge_amount),
            "charge_period": _span(self.charge),
            "net": str(self.net),
            "kept": str(self.kept) if self.kept is not None else None,
        }


def _span(charge: Charge | None) -> str | None:
    return f"{charge.period.start}..{charge.period.last_day}" if charge is not None else None


def charged_in_advance(customer: CustomerSnapshot, service: ServiceSnapshot) -> bool:
    """Forward invoicing charges a period at its start; a prepaid wallet always pays first
    (the engine's rule in ``billing._next_billing_due``)."""
    return customer.prepaid or service.terms.mode is InvoicingMode.FORWARD


def check_effective(effective: date, *, today: date) -> None:
    if effective > today:
        raise ValidationError(
            "effective",
            f"{effective} is in the future; a change takes effect today ({today}) or on an "
            "earlier day of the charged period (future changes are not scheduled)",
        )


def quote_plan_change(
    customer: CustomerSnapshot,
    service: ServiceSnapshot,
    *,
    new_terms: ServiceTerms,
    charged: InvoiceLine | None,
    effective: date,
    today: date,
    at: datetime,
) -> ChangeQuote:
    """Price moving ``service`` to ``new_terms`` from ``effective``.

    ``charged`` is the service's last charge (the one ending at ``billed_until``) read as a line,
    when the service is charged in advance; it is what the credit gives back part of.
    """
    check_effective(effective, today=today)
    if new_terms.cycle != service.terms.cycle:
        raise ValidationError(
            "plan",
            f"the new plan bills on another cycle ({new_terms.cycle.kind.value}) than the "
            f"service ({service.terms.cycle.kind.value}); a change of billing cycle is a new "
            "service",
        )
    currency = service.terms.price.currency
    if new_terms.price.currency != currency:
        raise ValidationError(
            "plan", f"the new plan is priced in {new_terms.price.currency}, not {currency}"
        )
    if not charged_in_advance(customer, service):
        used = _used_charge(service, effective, at)
        return ChangeQuote(
            ChangeKind.PLAN_CHANGE,
            service.id,
            effective,
            in_advance=False,
            currency=currency,
            charge=used,
            billed_until=used.period.end if used is not None else service.billed_until,
        )
    unused = _unused(service, charged, effective)
    credit = _credit(service, unused, at)
    charge = None
    if unused is not None:
        # the same days as the credit: the same quantity (unused days / days of the full period)
        quantity = unused.line.quantity
        unit = new_terms.price_on(unused.period.start)
        amount = unit.prorate(quantity.numerator, quantity.denominator)
        if amount.is_positive:
            charge = Charge(
                service.id,
                ChargeKind.CHANGE,
                unused.period,
                quantity,
                unit,
                split_tax(amount, new_terms.tax),
                at,
                new_terms.tax,
                new_terms.description,
            )
    quote = ChangeQuote(
        ChangeKind.PLAN_CHANGE,
        service.id,
        effective,
        in_advance=True,
        currency=currency,
        credit=credit,
        credit_line=unused.line if credit is not None and unused is not None else None,
        charge=charge,
        billed_until=service.billed_until,
        kept=unused.kept if unused is not None else None,
    )
    if customer.prepaid and quote.net.is_positive:
        after = customer.balance - quote.net
        if after < customer.minimum_balance:
            raise ValidationError(
                "plan",
                f"the wallet holds {customer.balance}; the change costs {quote.net} more for the "
                f"rest of the period and would leave {after}, under the minimum balance "
                f"{customer.minimum_balance}; top up first",
            )
    return quote


def quote_termination(
    customer: CustomerSnapshot,
    service: ServiceSnapshot,
    *,
    charged: InvoiceLine | None,
    effective: date,
    today: date,
    at: datetime,
) -> ChangeQuote:
    """Price ending ``service`` from ``effective``: credit the unused days paid in advance, or
    charge the used days owed in arrears."""
    check_effective(effective, today=today)
    currency = service.terms.price.currency
    if not charged_in_advance(customer, service):
        used = _used_charge(service, effective, at)
        return ChangeQuote(
            ChangeKind.TERMINATION,
            service.id,
            effective,
            in_advance=False,
            currency=currency,
            charge=used,
            billed_until=used.period.end if used is not None else service.billed_until,
        )
    unused = _unused(service, charged, effective)
    credit = _credit(service, unused, at)
    return ChangeQuote(
        ChangeKind.TERMINATION,
        service.id,
        effective,
        in_advance=True,
        currency=currency,
        credit=credit,
        credit_line=unused.line if credit is not None and unused is not None else None,
        billed_until=effective if unused is not None else service.billed_until,
        kept=unused.kept if unused is not None else None,
    )


def ended_active_to(service: ServiceSnapshot, effective: date) -> date | None:
    """The last day of a service ended from ``effective``: the day before, or an earlier
    "active to" already set. Storage requires ``active_to > active_from``, so a service ended
    before its second day has no last day to record (None); its state and its event say when
    it ended."""
    last = effective - timedelta(days=1)
    if service.active_to is not None and service.active_to <= last:
        return service.active_to
    return last if last > service.active_from else None


@dataclass(frozen=True, slots=True)
class _Unused:
    """Days paid in advance and not used: their period, the credit line giving them back
    (possibly zero) and what stays charged of the span (the remainder)."""

    period: Period
    line: InvoiceLine
    kept: Money
    description: str  # the credited charge's (its plan's name)


def _unused(
    service: ServiceSnapshot, charged: InvoiceLine | None, effective: date
) -> _Unused | None:
    end = service.billed_until
    if end is None or effective >= end:
        return None  # nothing paid for the days from the effective date
    if charged is None or charged.period_start is None or charged.period_end != end:
        raise ValidationError(
            "effective",
            f"must be on or after {end}, the day service {service.id} is billed up to: no "
            "charge covers the days before it to credit",
        )
    if effective < charged.period_start:
        raise ValidationError(
            "effective",
            f"must not be before {charged.period_start}, the start of the last charged period "
            f"(or of the last change); earlier periods are closed",
        )
    unused_days = (end - effective).days
    line = prorated_credit_line(
        charged, unused_days, description=f"{charged.description}{UNUSED_SUFFIX}"
    )
    return _Unused(Period(effective, end), line, charged.gross - line.gross, charged.description)


def _credit(service: ServiceSnapshot, unused: _Unused | None, at: datetime) -> Charge | None:
    """The refund charge of the credit line, unless it rounds to nothing."""
    if unused is None or unused.line.gross.is_zero:
        return None
    line = unused.line
    return Charge(
        service.id,
        ChargeKind.REFUND,
        unused.period,
        line.quantity,
        line.unit_price,
        TaxSplit(line.net, line.tax),
        at,
        line.tax_profile,
        unused.description,
    )


def _used_charge(service: ServiceSnapshot, effective: date, at: datetime) -> Charge | None:
    """The old terms' charge for the days used in arrears up to ``effective``, if any."""
    if service.billed_until is not None and effective < service.billed_until:
        raise ValidationError(
            "effective",
            f"must not be before {service.billed_until}: service {service.id} is charged in "
            "arrears up to that day and closed periods are never repriced",
        )
    if service.state not in ACCRUING:
        return None
    start = first_billing_start(service)
    end = effective
    if service.active_to is not None:
        end = min(end, service.active_to + timedelta(days=1))
    if end <= start:
        return None
    period, full = current_period(service.terms.cycle, start)
    if end > period.end:
        raise ValidationError(
            "effective",
            f"service {service.id} is not billed up to date (billed from {start}); run the "
            "tick first",
        )
    used = Period(start, end)
    quantity, split = price_period(service.terms, used, full)
    if split.gross.is_zero:
        return None
    return Charge(
        service.id,
        ChargeKind.PERIOD,
        used,
        quantity,
        service.terms.price_on(used.start),
        split,
        at,
        service.terms.tax,
        service.terms.description,
    )
