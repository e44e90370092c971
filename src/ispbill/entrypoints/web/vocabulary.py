"""Words the pages translate at run time (``_(value)``) that no template spells out: states,
statuses and the sign-in refusals. Listed here so ``pybabel extract`` finds them."""

from __future__ import annotations


def _(message: str) -> str:
    return message


WORDS = (
    _("issued"),
    _("partially_paid"),
    _("paid"),
    _("void"),
    _("active"),  # customers (and services)
    _("inactive"),
    _("prepaid"),  # balance controls
    _("postpaid"),
    _("unmatched"),  # bank statement lines
    _("matched"),
    _("ignored"),
    _("all"),
    _("redeemed"),  # refill cards (besides active)
    _("voided"),
    _("expired"),
    _("wrong name, password or code"),
    _("too many failed sign-ins; try again in 15 minutes"),
)
