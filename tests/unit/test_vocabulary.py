"""One vocabulary: the use cases and the adapters compare statuses, methods, reasons and kinds
through the domain's enums, never by retyping their words.

A quoted ``"active"`` next to ``ServiceState.ACTIVE`` is a second spelling of the same word: it
drifts (the console once said ``bank`` where the domain says ``bank_transfer``) and no type
checker sees it. The source is parsed with ``ast`` (nothing is imported); the checker is tested
on a snippet so a blind spot shows up as a failure here rather than as a silent pass.
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

from ispbill.domain.bank import LineStatus
from ispbill.domain.billing import ChargeKind
from ispbill.domain.customers import BalanceControl, CustomerStatus
from ispbill.domain.invoicing import DocumentKind, InvoiceStatus
from ispbill.domain.ledger import AccountKind, EntryKind
from ispbill.domain.lifecycle import (
    ServiceEvent,
    ServiceState,
    SuspensionReason,
    SuspensionSource,
    SuspensionStatus,
)
from ispbill.domain.notifications import NotificationStatus
from ispbill.domain.payments import CheckoutStatus, PaymentMethod, TopUpOutcome, TopUpStatus
from ispbill.domain.radius import CommandStatus
from ispbill.domain.refill import CardStatus

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ispbill"
CHECKED_LAYERS = ("use_cases", "adapters")
VOCABULARIES: tuple[type[StrEnum], ...] = (
    ServiceState,
    ServiceEvent,
    SuspensionReason,
    SuspensionStatus,
    SuspensionSource,
    CustomerStatus,
    BalanceControl,
    InvoiceStatus,
    DocumentKind,
    ChargeKind,
    AccountKind,
    EntryKind,
    CardStatus,
    LineStatus,
    PaymentMethod,
    CheckoutStatus,
    TopUpStatus,
    TopUpOutcome,
    NotificationStatus,
    CommandStatus,
)
WORDS = frozenset(member.value for enum in VOCABULARIES for member in enum)
# Adapters that read another system's words, which merely look like ours: Stripe's
# PaymentIntent says "succeeded" in Stripe's vocabulary, translated there into ChargeStatus.
FOREIGN = frozenset({"adapters/payments/stripe_gateway.py"})
# Migrations freeze the words of their day on purpose.
SKIPPED_PARTS = frozenset({"migrations"})
SQL_MEMBERSHIP = frozenset({"in_", "not_in", "notin_"})


def _quoted(node: ast.expr) -> list[str]:
    """The string constants of an operand: itself, or the items of a literal tuple/list/set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [word for item in node.elts for word in _quoted(item)]
    return []


def retyped_words(source: str, words: frozenset[str]) -> list[str]:
    """``line: 'word'`` for each vocabulary word written as a literal where it is compared:
    ``==``/``!=``/``in``/``not in``, SQL ``.in_()``/``.not_in()``, and ``match`` cases."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        operands: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_MEMBERSHIP
        ):
            operands = list(node.args)
        elif isinstance(node, ast.MatchValue):
            operands = [node.value]
        for operand in operands:
            found += [(node.lineno, w) for w in _quoted(operand) if w in words]
    return [f"{line}: {word!r}" for line, word in sorted(found)]


def test_retyped_word_checker_sees_every_form_of_comparison() -> None:
    source = (
        "if row.status == 'active':\n"
        "    pass\n"
        "ok = 'pending' != command.status\n"
        "blocked = state in ('suspended', 'paused')\n"
        "query = select(S).where(S.status.in_(['planned', 'active']), S.source == 'manual')\n"
        "query = query.where(S.status.not_in({'lifted'}))\n"
        "match outcome:\n"
        "    case 'sent':\n"
        "        pass\n"
        "fine = state == ServiceState.ACTIVE.value\n"
        "fine = dialect == 'postgresql'\n"
        "fine = f'service.{state}' == kind\n"
        "fine = {'status': 'active'}\n"
    )
    assert retyped_words(source, WORDS) == [
        "1: 'active'",
        "3: 'pending'",
        "4: 'paused'",
        "4: 'suspended'",
        "5: 'active'",
        "5: 'manual'",
        "5: 'planned'",
        "6: 'lifted'",
        "8: 'sent'",
    ]


def test_use_cases_and_adapters_compare_through_the_domain_enums() -> None:
    found = []
    for layer in CHECKED_LAYERS:
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            where = path.relative_to(PACKAGE).as_posix()
            if where in FOREIGN or SKIPPED_PARTS & set(path.parts):
                continue
            found += [f"{where}:{hit}" for hit in retyped_words(path.read_text(), WORDS)]
    assert found == []
