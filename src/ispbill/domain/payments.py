"""Payment methods: which ledger account each way of receiving money debits; and where a
gateway's checkout or automatic top-up stands.

ispbill knows five methods (cash, bank transfer, card, gateway, refill card). An operator adds
its own (a cheque, M-Pesa, a partner shop) as data: a name mapped to one of the money accounts
a payment may come through. The name is what operators type and what a payment stores; the
account kind is what the ledger needs, so operator methods never widen the chart of accounts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from ispbill.domain.errors import ValidationError
from ispbill.domain.ledger import AccountKind


class PaymentMethod(StrEnum):
    """The built-in methods; an operator's own methods are plain names (``parse_method_map``)."""

    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    CARD = "card"
    GATEWAY = "gateway"
    REFILL_CARD = "refill_card"


class CheckoutStatus(StrEnum):
    """A gateway checkout (pay N months, or a top-up paid by hand): being opened at the
    gateway, open for the customer to pay, paid (a payment exists), or refused."""

    CREATING = "creating"
    OPEN = "open"
    COMPLETED = "completed"
    FAILED = "failed"


class TopUpStatus(StrEnum):
    """One automatic top-up charge of a saved method: asked of the gateway, answered later
    (by webhook), paid (a payment exists), or declined (retried by a new attempt)."""

    REQUESTED = "requested"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class TopUpOutcome(StrEnum):
    """What storing a gateway's answer to a top-up did: paid, waiting for the webhook, failed
    with a retry scheduled, or failed for the last time."""

    SUCCEEDED = "succeeded"
    PENDING = "pending"
    RETRY_SCHEDULED = "retry_scheduled"
    GAVE_UP = "gave_up"


BUILTIN_METHODS: Mapping[str, AccountKind] = {
    PaymentMethod.CASH.value: AccountKind.CASH,
    PaymentMethod.BANK_TRANSFER.value: AccountKind.BANK,
    PaymentMethod.CARD.value: AccountKind.CARD,
    PaymentMethod.GATEWAY.value: AccountKind.GATEWAY_CLEARING,
    PaymentMethod.REFILL_CARD.value: AccountKind.REFILL_CARD_LIABILITY,
}
OPERATOR_METHOD_ACCOUNTS: tuple[AccountKind, ...] = (
    AccountKind.CASH,
    AccountKind.BANK,
    AccountKind.CARD,
    AccountKind.GATEWAY_CLEARING,
)
METHOD_NAME = re.compile(r"[a-z][a-z0-9_]{1,31}")
FIELD = "payment_methods"


def parse_method_map(value: object) -> dict[str, str]:
    """Operator methods from a mapping or from text such as ``"cheque=bank, mpesa=gateway_clearing"``.

    Each name is lower_snake_case, not a built-in method, and maps to one of the operator
    method accounts; the first broken rule is refused naming the method.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            name, sep, kind = item.partition("=")
            if not sep:
                raise ValidationError(
                    FIELD, f"{item!r} must be written name=account, e.g. cheque=bank"
                )
            pairs[name.strip()] = kind.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise ValidationError(FIELD, "must map method names to account kinds")
    accepted = ", ".join(k.value for k in OPERATOR_METHOD_ACCOUNTS)
    methods: dict[str, str] = {}
    for name, kind in value.items():
        if not isinstance(name, str) or not METHOD_NAME.fullmatch(name):
            raise ValidationError(
                f"{FIELD}.{name}", "names are lower_snake_case, 2 to 32 characters"
            )
        if name in BUILTIN_METHODS:
            raise ValidationError(f"{FIELD}.{name}", "is a built-in method already")
        if kind not in {k.value for k in OPERATOR_METHOD_ACCOUNTS}:
            raise ValidationError(f"{FIELD}.{name}", f"account must be one of: {accepted}")
        methods[name] = str(kind)
    return methods


def method_account(method: str, operator_methods: Mapping[str, str]) -> AccountKind:
    """The account a payment by ``method`` comes through, or a refusal listing the methods."""
    if method in BUILTIN_METHODS:
        return BUILTIN_METHODS[method]
    if method in operator_methods:
        return AccountKind(operator_methods[method])
    known = [*BUILTIN_METHODS, *operator_methods]
    raise ValidationError("method", f"must be one of: {', '.join(known)}")
