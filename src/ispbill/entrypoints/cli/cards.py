"""CLI for refill cards: issue a batch (written once to CSV and PDF), redeem, void, expire, list,
and the liability report. Listings never show codes: only their HMACs are stored."""

from __future__ import annotations

import csv
import io
import os
from contextlib import suppress
from pathlib import Path

import typer

from ispbill.adapters.db import settings_store
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.adapters.pdf.cards import CardSheet, SheetCard, render_sheet_pdf
from ispbill.domain.errors import ValidationError
from ispbill.domain.money import Money
from ispbill.entrypoints.cli.base import (
    ACTOR,
    ALL,
    CURSOR,
    LIMIT,
    Cli,
    console,
    emit,
    emit_listing,
    find,
    listing,
    parse_day,
    settings,
    unit_of_work,
)
from ispbill.use_cases.catalog.name_lookups import customer_id_of
from ispbill.use_cases.payments import refill_cards as cards
from ispbill.use_cases.queries.cli_listings import Page

cards_app = Cli(help="Refill cards (vouchers): prepaid codes issued in batches, used once.")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
CSV_COLUMNS = ("serial", "code", "value", "currency", "expires_on", "batch")


def _key() -> bytes:
    secret = settings().refill_card_secret
    return cards.secret_key(secret.get_secret_value() if secret is not None else None)


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write a new file readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ValidationError("out", f"{path} exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ValidationError("out", f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _csv_bytes(batch: cards.IssuedBatch) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    expires = batch.expires_on.isoformat() if batch.expires_on else ""
    amount = f"{batch.value.to_decimal():f}"
    for card in batch.cards:
        writer.writerow((card.serial, card.code, amount, batch.value.currency, expires, batch.name))
    return buffer.getvalue().encode("utf-8")


class _Files:
    """Delivers a batch's codes to ``<out>/<batch>.csv`` and ``.pdf``, once; can take them back
    if the batch is not committed after all."""

    def __init__(self, out: Path, issuer: str) -> None:
        self.out = out
        self.issuer = issuer
        self.written: list[Path] = []

    def __call__(self, batch: cards.IssuedBatch) -> None:
        sheet = CardSheet(
            issuer=self.issuer,
            batch=batch.name,
            value_text=str(batch.value),
            expires_text=batch.expires_on.isoformat() if batch.expires_on else "",
            cards=tuple(SheetCard(c.serial, c.code) for c in batch.cards),
        )
        pdf = render_sheet_pdf(sheet)  # before any file exists: a rendering failure leaves none
        try:
            for suffix, data in ((".csv", _csv_bytes(batch)), (".pdf", pdf)):
                path = self.out / f"{batch.name}{suffix}"
                _create_exclusive(path, data)
                self.written.append(path)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        for path in self.written:
            with suppress(FileNotFoundError):
                path.unlink()
        self.written.clear()


@cards_app.command("generate")
def cards_generate(
    count: int = typer.Option(
        ..., "--count", help=f"Cards in the batch (1-{cards.MAX_BATCH_COUNT})."
    ),
    value: str = typer.Option(..., "--value", help="Value of each card, e.g. 20.00"),
    currency: str = typer.Option(..., "--currency", help="ISO 4217 code, e.g. USD."),
    expires: str | None = typer.Option(
        None, "--expires", help="Last valid day, e.g. 2027-12-31 (default: no expiry)."
    ),
    prefix: str = typer.Option(
        "RC", "--prefix", help="Batch and serial prefix (1-8 letters/digits)."
    ),
    timezone: str | None = typer.Option(
        None, help="Timezone of the expiry date (default: ISPBILL_DEFAULT_TIMEZONE)."
    ),
    out: Path = typer.Option(Path("."), "--out", help="Directory for <batch>.csv and <batch>.pdf."),
) -> None:
    """Issue a batch: post its value as a liability and write its codes ONCE to <batch>.csv and
    <batch>.pdf (owner-readable only). The codes are not stored and cannot be printed again."""
    if not out.is_dir():
        raise ValidationError("out", f"{out} is not a directory")
    key = _key()
    spec = cards.NewBatch(
        count=count,
        value=value,
        currency=currency,
        expires_on=parse_day(expires, "expires"),
        prefix=prefix,
        timezone=timezone or settings().default_timezone,
    )
    with unit_of_work() as (uow, _):
        issuer = settings_store.load(uow).seller_name
    files = _Files(out, issuer)
    with unit_of_work() as (uow, now):
        try:
            issued = cards.generate_batch(
                uow, spec=spec, key=key, now=now, actor=ACTOR, deliver=files
            )
        except BaseException:
            files.remove()  # delivered but not committed: those codes were never issued
            raise
    console.print(f"batch {issued.name} (id {issued.batch_id})", markup=False)
    console.print(
        f"{len(issued.cards)} cards x {issued.value} = {issued.total}"
        + (f", valid through {issued.expires_on} ({issued.timezone})" if issued.expires_on else ""),
        markup=False,
    )
    for path in files.written:
        console.print(f"wrote {path}", markup=False)
    console.print(
        "These files hold the only copy of the codes: store them safely, delete them once printed.",
        markup=False,
    )


@cards_app.command("redeem")
def cards_redeem(
    code: str = typer.Argument(
        ..., help="The code on the card; case, spaces and dashes are ignored."
    ),
    customer: str = typer.Option(..., "--customer", help="Customer id or name."),
    source: str | None = typer.Option(
        None, "--source", help="Where the attempt comes from (an IP, a terminal); throttled too."
    ),
) -> None:
    """Redeem a card into the customer's wallet, once; a deactivated prepaid service the wallet
    now covers is reactivated at once."""
    key = _key()
    with unit_of_work() as (uow, now):
        done = cards.redeem_card(
            uow,
            code=code,
            customer_id=find(customer_id_of, customer),
            key=key,
            now=now,
            actor=ACTOR,
            source=source,
        )
    console.print(
        f"card {done.serial} redeemed: {done.amount} credited to {done.customer_name!r} "
        f"(payment {done.payment_id}); wallet balance {done.balance}",
        markup=False,
    )


@cards_app.command("void")
def cards_void(
    serial: str | None = typer.Argument(None, help="Serial of one card, e.g. RC00001-00007."),
    batch: str | None = typer.Option(None, "--batch", help="Void every active card of a batch."),
    reason: str = typer.Option("", "--reason", help="Why (lost, stolen, misprinted)."),
) -> None:
    """Void a card or a batch: its value leaves the refill-card liability."""
    with unit_of_work() as (uow, now):
        voided = cards.void_cards(
            uow, serial=serial, batch=batch, reason=reason, now=now, actor=ACTOR
        )
    totals = ", ".join(str(t) for t in voided.total.values())
    console.print(f"{len(voided.serials)} card(s) voided ({totals})", markup=False)


@cards_app.command("expire")
def cards_expire() -> None:
    """Move the value of active cards past their expiry from the liability to breakage."""
    with unit_of_work() as (uow, now):
        report = cards.expire_cards(uow, now=now, actor=ACTOR)
    totals = ", ".join(str(t) for t in report.total.values()) or "nothing"
    console.print(f"{report.cards} card(s) expired; moved to breakage: {totals}", markup=False)


@cards_app.command("list")
def cards_list(
    batch: str | None = typer.Option(None, "--batch", help="Batch id or name."),
    status: str | None = typer.Option(None, "--status", help="active, redeemed, voided, expired."),
    limit: int = LIMIT,
    cursor: int | None = CURSOR,
    every: bool = ALL,
    as_json: bool = JSON,
) -> None:
    """Cards, oldest first (serials and states; codes are never stored, so never shown)."""

    def page(uow: UnitOfWork, after: int | None, size: int) -> Page:
        found = cards.list_cards(
            uow.session, batch=batch, status=status, after=after or 0, limit=size + 1
        )
        rows = [
            {
                "serial": card.serial,
                "batch": group.name,
                "value": str(Money(card.value_minor, card.currency)),
                "status": card.status,
                "expires_on": card.expires_on,
                "redeemed_at": card.redeemed_at,
                "customer": name,
            }
            for card, group, name in found[:size]
        ]
        more = len(found) > size
        return Page(rows, found[size - 1][0].id if more else None)

    found = listing(page, limit=limit, cursor=cursor, every=every)
    emit_listing(found, as_json=as_json, title="Refill cards")


@cards_app.command("liability")
def cards_liability(as_json: bool = JSON) -> None:
    """Refill-card liability per currency: the ledger against the active cards."""
    with unit_of_work() as (uow, now):
        report = cards.liability_report(uow.session, now=now)
    rows = [
        {
            "currency": line.currency,
            "ledger": str(line.ledger),
            "active_cards": line.active_cards,
            "outstanding": str(line.outstanding),
            "unexpired": str(line.unexpired),
            "awaiting_expiry": str(line.awaiting_expiry),
            "cards_awaiting_expiry": line.cards_awaiting_expiry,
            "balanced": line.balanced,
        }
        for line in report
    ]
    emit(rows, as_json=as_json, title="Refill-card liability")
    if not as_json and any(line.cards_awaiting_expiry for line in report):
        console.print(
            "Some active cards are past their expiry: 'ispbill cards expire' moves them to "
            "breakage.",
            markup=False,
        )
    if not all(line.balanced for line in report):
        raise typer.Exit(1)
