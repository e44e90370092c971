"""What the network is told about a subscriber: the one function behind every RADIUS answer.

``build_reply`` turns an ``AccessView`` (the committed state of a service as the network sees
it) and the operator's ``RadiusPolicy`` into a ``Reply``: accept with the plan's speed, accept
into the walled garden with a reason, or reject. FreeRADIUS's authorize (rlm_rest) and the CoA
sender both call it, so a live session is never told something a new login would not be
(openwisp-radius lesson in FREERADIUS-NOTES). Speeds are rendered per vendor: MikroTik's
``Mikrotik-Rate-Limit`` ("rx/tx" from the router's side, that is upload/download of the
subscriber) or an operator-defined attribute map for other NAS types (STYLE: policies are data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import ServiceEvent, ServiceState, SuspensionReason
from ispbill.domain.plans import Speed, parse_speed

# the rate attributes of a generic (non-MikroTik) NAS by default: WISPr, understood by most
# hotspot gateways (CoovaChilli, pfSense captive portal)
DEFAULT_ATTRIBUTE_MAP: Mapping[str, str] = {
    "WISPr-Bandwidth-Max-Down": "{down_bps}",
    "WISPr-Bandwidth-Max-Up": "{up_bps}",
}
TEMPLATE_FIELDS = ("down_kbps", "up_kbps", "down_bps", "up_bps", "rate_limit")
# blocked states that are not suspensions, named like reasons so one map covers them all
DEACTIVATED = "deactivated"
PAUSED = "paused"
GARDEN_KEYS = (*(r.value for r in SuspensionReason), DEACTIVATED, PAUSED)
# event kinds that only change a rate: a CoA is enough whatever the garden uses
RATE_ONLY_EVENTS = frozenset(
    {
        ServiceEvent.PLAN_CHANGED.value,
        ServiceEvent.THROTTLED.value,
        ServiceEvent.UNTHROTTLED.value,
        ServiceEvent.FUP_THROTTLED.value,
        ServiceEvent.FUP_RESET.value,
    }
)


class Vendor(StrEnum):
    MIKROTIK = "mikrotik"
    GENERIC = "generic"


class Verdict(StrEnum):
    ACCEPT = "accept"
    GARDEN = "walled_garden"
    REJECT = "reject"


class Command(StrEnum):
    """RFC 5176 packets: change the session in place, or end it so it logs in afresh."""

    COA = "coa"
    DISCONNECT = "disconnect"


class CommandStatus(StrEnum):
    """Where a command of the enforcement outbox stands: waiting to be sent (or retried), sent
    to every NAS that needed it, or given up on after the last attempt: the dead letter, which
    waits for an operator to retry it (``enforcement.retry_command``)."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


class GardenKind(StrEnum):
    ADDRESS_LIST = "address_list"  # Mikrotik-Address-List (Filter-Id on a generic NAS)
    POOL = "pool"  # Framed-Pool: the subscriber gets an address from a garden pool


@dataclass(frozen=True, slots=True)
class GardenRule:
    kind: GardenKind
    name: str

    @classmethod
    def parse(cls, text: str, field_name: str) -> GardenRule:
        """``address_list:unpaid`` or ``pool:garden``."""
        kind, sep, name = text.strip().partition(":")
        if not sep or kind not in GardenKind.__members__.values() or not _plain(name):
            raise ValidationError(
                field_name,
                "must be address_list:NAME or pool:NAME (letters, digits, '-', '_', '.')",
            )
        return cls(GardenKind(kind), name)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"


@dataclass(frozen=True, slots=True)
class RadiusPolicy:
    """The operator's choices for blocked subscribers and for non-MikroTik rate attributes."""

    reject_reasons: frozenset[str] = frozenset()
    garden: Mapping[str, GardenRule] = field(default_factory=dict)
    garden_default: GardenRule = GardenRule(GardenKind.ADDRESS_LIST, "walled-garden")
    garden_speed: Speed | None = None
    active_list: str | None = None  # the address list (Filter-Id) of subscribers with access
    attribute_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTE_MAP))
    interim_interval_s: int | None = 300

    def garden_rule(self, reason: str) -> GardenRule:
        return self.garden.get(reason, self.garden_default)

    @property
    def uses_pools(self) -> bool:
        rules = [self.garden_default, *self.garden.values()]
        return any(rule.kind is GardenKind.POOL for rule in rules)


@dataclass(frozen=True, slots=True)
class AccessView:
    """A service as the network sees it, from committed state."""

    service_id: int
    state: ServiceState
    reason: str | None
    speed: Speed
    vendor: Vendor = Vendor.GENERIC
    throttle: Speed | None = None  # FUP tier or collection throttle stage, whichever is lower
    static_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    verdict: Verdict
    attributes: tuple[tuple[str, str], ...]
    message: str
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict is not Verdict.REJECT

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.attributes if key == name), None)


def blocked_reason(view: AccessView) -> str | None:
    """Why a service without access is blocked, as a garden key; ``None`` when it has access."""
    match view.state:
        case ServiceState.ACTIVE:
            return None
        case ServiceState.SUSPENDED:
            return view.reason or SuspensionReason.NOT_SET.value
        case ServiceState.DEACTIVATED:
            return DEACTIVATED
        case ServiceState.PAUSED:
            return PAUSED
        case _:
            return view.state.value


def build_reply(view: AccessView | None, policy: RadiusPolicy) -> Reply:
    """The answer for a subscriber: the single source of both Access-Accept and CoA contents."""
    if view is None:
        return Reply(Verdict.REJECT, (), "unknown subscriber")
    if view.state in (ServiceState.ENDED, ServiceState.PENDING):
        label = "ended" if view.state is ServiceState.ENDED else "not started yet"
        return Reply(Verdict.REJECT, (), f"service {label}", view.state.value)
    reason = blocked_reason(view)
    if reason is None:
        speed = lower(view.speed, view.throttle)
        attributes = [*rate_attributes(speed, view.vendor, policy)]
        if policy.active_list:
            attributes.append((_list_attribute(view.vendor), policy.active_list))
        if view.static_ip:
            attributes.append(("Framed-IP-Address", view.static_ip))
        attributes += _interim(policy)
        message = "throttled" if speed != view.speed else "active"
        return Reply(Verdict.ACCEPT, tuple(attributes), message)
    message = f"{view.state.value}: {reason}" if view.state is ServiceState.SUSPENDED else reason
    if reason in policy.reject_reasons:
        return Reply(Verdict.REJECT, (), message, reason)
    return Reply(Verdict.GARDEN, _garden_attributes(view, reason, policy), message, reason)


def command_for(reply: Reply, event_kind: str, policy: RadiusPolicy) -> Command:
    """CoA changes a rate or an address list in place. The session is ended instead (so the
    subscriber logs in afresh and gets the new answer) for a reject, when a garden hands out
    addresses from a pool, and when a block is lifted but no address list of subscribers with
    access is configured to replace the garden's list."""
    if reply.verdict is Verdict.REJECT:
        return Command.DISCONNECT
    if event_kind in RATE_ONLY_EVENTS:
        return Command.COA
    if policy.uses_pools:
        return Command.DISCONNECT
    if reply.verdict is Verdict.ACCEPT and not policy.active_list:
        return Command.DISCONNECT
    return Command.COA


def slowest(*throttles: Speed | None) -> Speed | None:
    """The throttle in force when several apply (a FUP tier and a collection stage): the
    lower speed in each direction."""
    present = [t for t in throttles if t is not None]
    if not present:
        return None
    return Speed(min(t.down_kbps for t in present), min(t.up_kbps for t in present))


def lower(speed: Speed, throttle: Speed | None) -> Speed:
    """A throttle only ever slows a subscriber down, direction by direction."""
    if throttle is None:
        return speed
    return Speed(min(speed.down_kbps, throttle.down_kbps), min(speed.up_kbps, throttle.up_kbps))


def rate_attributes(
    speed: Speed, vendor: Vendor, policy: RadiusPolicy
) -> tuple[tuple[str, str], ...]:
    if vendor is Vendor.MIKROTIK:
        return (("Mikrotik-Rate-Limit", mikrotik_rate(speed)),)
    values = {
        "down_kbps": speed.down_kbps,
        "up_kbps": speed.up_kbps,
        "down_bps": speed.down_kbps * 1000,
        "up_bps": speed.up_kbps * 1000,
        "rate_limit": mikrotik_rate(speed),
    }
    return tuple(
        (name, template.format(**values)) for name, template in policy.attribute_map.items()
    )


def mikrotik_rate(speed: Speed) -> str:
    """MikroTik "rx-rate/tx-rate" seen from the router: the subscriber's upload first."""
    return f"{_rate(speed.up_kbps)}/{_rate(speed.down_kbps)}"


def _rate(kbps: int) -> str:
    if kbps % 1_000_000 == 0:
        return f"{kbps // 1_000_000}G"
    if kbps % 1000 == 0:
        return f"{kbps // 1000}M"
    return f"{kbps}k"


def _garden_attributes(
    view: AccessView, reason: str, policy: RadiusPolicy
) -> tuple[tuple[str, str], ...]:
    rule = policy.garden_rule(reason)
    attributes: list[tuple[str, str]] = [("Reply-Message", f"{view.state.value}: {reason}")]
    if rule.kind is GardenKind.POOL:
        attributes.append(("Framed-Pool", rule.name))
    else:
        attributes.append((_list_attribute(view.vendor), rule.name))
        if view.static_ip:
            attributes.append(("Framed-IP-Address", view.static_ip))
    speed = policy.garden_speed or view.throttle
    if speed is not None:
        attributes += rate_attributes(lower(view.speed, speed), view.vendor, policy)
    attributes += _interim(policy)
    return tuple(attributes)


def _list_attribute(vendor: Vendor) -> str:
    return "Mikrotik-Address-List" if vendor is Vendor.MIKROTIK else "Filter-Id"


def _interim(policy: RadiusPolicy) -> list[tuple[str, str]]:
    if policy.interim_interval_s is None:
        return []
    return [("Acct-Interim-Interval", str(policy.interim_interval_s))]


def _plain(name: str) -> bool:
    return bool(name) and len(name) <= 64 and all(c.isalnum() or c in "-_." for c in name)


def parse_garden_map(raw: object, field_name: str = "radius_walled_garden") -> dict[str, str]:
    """``non_payer=address_list:unpaid, fup=pool:fup`` (or a mapping) -> validated mapping."""
    pairs = _pairs(raw, field_name)
    for key, value in pairs.items():
        if key not in GARDEN_KEYS:
            raise ValidationError(field_name, f"{key!r} is not one of {', '.join(GARDEN_KEYS)}")
        GardenRule.parse(value, field_name)
    return pairs


def parse_attribute_map(raw: object, field_name: str = "radius_attribute_map") -> dict[str, str]:
    """``WISPr-Bandwidth-Max-Down={down_bps}, ...``: each template may use the fields in
    ``TEMPLATE_FIELDS`` only, so a typo is refused here rather than at the NAS."""
    pairs = _pairs(raw, field_name)
    sample = dict.fromkeys(TEMPLATE_FIELDS, 1)
    for name, template in pairs.items():
        if not _plain(name):
            raise ValidationError(field_name, f"{name!r} is not an attribute name")
        try:
            template.format(**sample)
        except (KeyError, IndexError, ValueError):
            raise ValidationError(
                field_name,
                f"{template!r}: use only {{{'}, {'.join(TEMPLATE_FIELDS)}}}",
            ) from None
    return pairs


def parse_reason_list(raw: object, field_name: str = "radius_reject_reasons") -> list[str]:
    items = raw if isinstance(raw, list | tuple) else str(raw or "").split(",")
    reasons = [str(item).strip() for item in items if str(item).strip()]
    for reason in reasons:
        if reason not in GARDEN_KEYS:
            raise ValidationError(field_name, f"{reason!r} is not one of {', '.join(GARDEN_KEYS)}")
    return reasons


def parse_rate(text: str, field_name: str) -> Speed:
    """``5M/1M`` (download/upload) -> Speed."""
    down, sep, up = text.partition("/")
    if not sep:
        raise ValidationError(field_name, "must be DOWN/UP such as '5M/1M'")
    return Speed(parse_speed(down, field_name), parse_speed(up, field_name))


def _pairs(raw: object, field_name: str) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in raw.items()}
    pairs: dict[str, str] = {}
    for item in str(raw or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValidationError(field_name, f"{item.strip()!r} must be KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs
