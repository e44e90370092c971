"""Service states and the transitions between them (ARCHITECTURE section 2).

A service is pending until it starts, active while it delivers, suspended with a reason
(ISPadmin), deactivated when a prepaid wallet cannot cover the upcoming period (CRM.COM), paused
past its "active to" date (UISP), and ended when terminated. The engine (a later layer) decides
*when* to move; this module says which moves exist, so no caller can invent another.
"""

from __future__ import annotations

from enum import StrEnum

from ispbill.domain.errors import ValidationError


class ServiceState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    PAUSED = "paused"
    ENDED = "ended"


class SuspensionReason(StrEnum):
    """ISPadmin: "Not set, Non-payer, UnRegistered and optional profiles 1 to 9", plus the
    credit-limit block (PortaBilling) and a FUP data-limit suspension (ISPadmin tariffs)."""

    NOT_SET = "not_set"
    NON_PAYER = "non_payer"
    UNREGISTERED = "unregistered"
    CREDIT_LIMIT = "credit_limit"
    FUP = "fup"
    PROFILE_1 = "profile_1"
    PROFILE_2 = "profile_2"
    PROFILE_3 = "profile_3"
    PROFILE_4 = "profile_4"
    PROFILE_5 = "profile_5"
    PROFILE_6 = "profile_6"
    PROFILE_7 = "profile_7"
    PROFILE_8 = "profile_8"
    PROFILE_9 = "profile_9"


class ServiceEvent(StrEnum):
    """The kinds of a service's events: its creation, each move to a state (``service.`` and
    the state's value), and the changes that alter its access without a move."""

    CREATED = "service.created"
    ACTIVE = "service.active"
    SUSPENDED = "service.suspended"
    DEACTIVATED = "service.deactivated"
    PAUSED = "service.paused"
    ENDED = "service.ended"
    PLAN_CHANGED = "service.plan_changed"
    THROTTLED = "service.throttled"
    UNTHROTTLED = "service.unthrottled"
    FUP_THROTTLED = "service.fup_throttled"
    FUP_RESET = "service.fup_reset"
    IDENTITY_SET = "service.identity_set"
    ACTIVE_TO_SET = "service.active_to_set"


class SuspensionStatus(StrEnum):
    """Where one suspension (a row of a service's suspension history) stands: planned for a
    later day, active now, lifted early (by a payment, a promise or an operator), or ended when
    its window closed."""

    PLANNED = "planned"
    ACTIVE = "active"
    LIFTED = "lifted"
    ENDED = "ended"


class SuspensionSource(StrEnum):
    """Who placed a suspension: an operator (manual, with a window) or the collections policy."""

    MANUAL = "manual"
    COLLECTION = "collection"


_S = ServiceState
TRANSITIONS: dict[ServiceState, frozenset[ServiceState]] = {
    _S.PENDING: frozenset({_S.ACTIVE, _S.DEACTIVATED, _S.ENDED}),
    _S.ACTIVE: frozenset({_S.SUSPENDED, _S.DEACTIVATED, _S.PAUSED, _S.ENDED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.DEACTIVATED, _S.PAUSED, _S.ENDED}),
    _S.DEACTIVATED: frozenset({_S.ACTIVE, _S.SUSPENDED, _S.PAUSED, _S.ENDED}),
    _S.PAUSED: frozenset({_S.ACTIVE, _S.ENDED}),
    _S.ENDED: frozenset(),
}

HAS_ACCESS = frozenset({ServiceState.ACTIVE})


def check_transition(current: ServiceState, target: ServiceState) -> None:
    """Refuse a move the lifecycle does not allow, naming both states."""
    if target not in TRANSITIONS[current]:
        raise ValidationError("state", f"a {current} service cannot become {target}")
