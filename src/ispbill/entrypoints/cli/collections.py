"""CLI for collections: the non-payer policy (``collection show|set``), manual suspensions,
promises and explanations (``services suspend|lift|promise|why|garden-link``) and the
walled-garden pages (``pages list|show|edit``). Thin: each command calls one use case."""

from __future__ import annotations

from pathlib import Path

import typer

from ispbill.domain.errors import ValidationError
from ispbill.entrypoints.cli.base import (
    ACTOR,
    Cli,
    app_for_command,
    console,
    emit,
    emit_object,
    find,
    find_optional,
    parse_day,
    unit_of_work,
)
from ispbill.use_cases.catalog.name_lookups import customer_class_id_of, service_id_of
from ispbill.use_cases.collections import collection_policy, info_pages, suspensions
from ispbill.use_cases.collections.non_payers import run_collections
from ispbill.use_cases.collections.walled_garden import garden_link
from ispbill.use_cases.queries import collection_views
from ispbill.use_cases.service_lifecycle.explain import explain_service

collection_app = Cli(help="Collections: the non-payer policy (ISPadmin), per operator or class.")
pages_app = Cli(help="Walled-garden info pages: one per suspension reason, in Markdown.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
CLASS = typer.Option(None, "--class", help="A customer class's overrides instead.")


@collection_app.command("show")
def collection_show(customer_class: str | None = CLASS, as_json: bool = JSON) -> None:
    """The policy in force (the operator's, or a class's with its overrides) and its keys."""
    with unit_of_work() as (uow, _):
        class_id = find_optional(customer_class_id_of, customer_class or None, field="class")
        view = collection_views.policy_view(uow, class_id)
    merged, own = view.policy, view.overrides
    fields = collection_policy.CollectionSettings.model_fields
    rows = [
        {
            "key": key,
            "value": merged[key],
            "set_here": key in own,
            "description": info.description or "",
        }
        for key, info in fields.items()
    ]
    title = (
        f"Collection policy of class {customer_class}" if customer_class else "Collection policy"
    )
    emit(rows, as_json=as_json, title=title)


@collection_app.command("set")
def collection_set(
    assignments: list[str] = typer.Argument(..., help="key=value pairs; key= clears a key."),
    customer_class: str | None = CLASS,
) -> None:
    """Change the policy; every customer concerned is reviewed at once (turning it off lifts
    automatic non-payer suspensions, turning it on re-evaluates everyone)."""
    changes: dict[str, str | None] = {}
    for item in assignments:
        if "=" not in item:
            raise ValidationError(item, "write key=value (key= clears it)")
        key, value = item.split("=", 1)
        changes[key.strip()] = value
    with app_for_command() as app:
        now = app.clock.now()
        class_id = find_optional(customer_class_id_of, customer_class or None, field="class")
        with app.uow() as uow:
            collection_policy.set_values(
                uow, changes=changes, customer_class_id=class_id, now=now, actor=ACTOR
            )
        report = run_collections(app.uow, now=now, actor=ACTOR)
    console.print(
        f"policy updated; reviewed {report.customers} customer(s): "
        f"{dict(sorted(report.actions.items())) or 'no change'}",
        markup=False,
    )


def services_suspend(
    service: str = typer.Argument(..., help="Service id."),
    reason: str = typer.Option(
        ..., help="not_set, non_payer, unregistered or profile_1..profile_9."
    ),
    invoicing: bool = typer.Option(
        False, "--suspend-invoicing", help="Suspend invoicing too: those days are not charged."
    ),
    starts_on: str | None = typer.Option(None, "--from", help="First day (default today)."),
    ends_on: str | None = typer.Option(None, "--to", help="Last suspended day (default open)."),
    repeat: bool = typer.Option(False, "--repeat", help="The FROM-TO window recurs every year."),
    note: str = typer.Option("", help="Why, for the history."),
    as_json: bool = JSON,
) -> None:
    """Suspend a service by hand now, or plan a FROM-TO window (ISPadmin client card)."""
    with unit_of_work() as (uow, now):
        row = suspensions.suspend_service(
            uow,
            spec=suspensions.SuspendRequest(
                service_id=find(service_id_of, service),
                reason=reason,
                suspend_invoicing=invoicing,
                starts_on=parse_day(starts_on, "from"),
                ends_on=parse_day(ends_on, "to"),
                repeat_yearly=repeat,
                note=note,
            ),
            now=now,
            actor=ACTOR,
        )
        shown = _suspension(row)
    emit_object(shown, as_json=as_json, title=f"Suspension #{shown['id']}")


def _suspension(row: object) -> dict[str, object]:
    fields = [
        "id",
        "service_id",
        "reason",
        "status",
        "suspend_invoicing",
        "starts_on",
        "ends_on",
        "repeat_yearly",
        "actor",
        "lifted_by",
        "note",
    ]
    return {name: getattr(row, name) for name in fields}


def services_lift(
    service: str = typer.Argument(..., help="Service id."),
    note: str = typer.Option("", help="Why, for the history."),
    end_repetition: bool = typer.Option(
        False, "--all", help="A yearly window: end the repetition, not only this year's."
    ),
    as_json: bool = JSON,
) -> None:
    """Lift the service's manual suspension (or cancel a planned one); a yearly window comes
    back next year unless --all."""
    with unit_of_work() as (uow, now):
        row = suspensions.lift_service(
            uow,
            service_id=find(service_id_of, service),
            now=now,
            actor=ACTOR,
            note=note,
            end_repetition=end_repetition,
        )
        shown = _suspension(row)
        following = suspensions.current_manual(uow, row.service_id)
        shown["next_occurrence"] = _suspension(following) if following else None
    emit_object(shown, as_json=as_json, title=f"Suspension #{shown['id']} lifted")


def services_promise(
    service: str = typer.Argument(..., help="Service id."),
    days: int = typer.Option(..., help="Days the service is restored for."),
) -> None:
    """Promise to pay: restore a non-payer (suspended or throttled) for DAYS; the stage returns
    if still unpaid."""
    with unit_of_work() as (uow, now):
        made = suspensions.promise_to_pay(
            uow, service_id=find(service_id_of, service), days=days, now=now, actor=ACTOR
        )
    console.print(
        f"restored service(s) {', '.join(map(str, made.services))} until {made.until.isoformat()}",
        markup=False,
    )


def services_why(
    service: str = typer.Argument(..., help="Service id."), as_json: bool = JSON
) -> None:
    """Why the service is in its state now (rule, dates, amounts) and what restores it."""
    with unit_of_work() as (uow, now):
        found = explain_service(uow, service_id=find(service_id_of, service), now=now)
    if as_json:
        emit_object(
            {
                "service_id": found.service_id,
                "state": found.state,
                "reason": found.reason,
                "text": found.text,
                **found.facts,
            },
            as_json=True,
            title="why",
        )
        return
    typer.echo(found.text)


def services_garden_link(
    service: str = typer.Argument(..., help="Service id."),
    days: int = typer.Option(7, help="Days the link stays valid."),
) -> None:
    """A signed link to the service's walled-garden page (needs ISPBILL_GARDEN_SECRET)."""
    with app_for_command() as app:
        service_id = find(service_id_of, service)
        secret = app.settings.garden_secret
        typer.echo(
            garden_link(
                secret=secret.get_secret_value() if secret else None,
                base_url=app.settings.public_base_url,
                service_id=service_id,
                now=app.clock.now(),
                days=days,
            )
        )


@pages_app.command("list")
def pages_list(as_json: bool = JSON) -> None:
    """Every reason's page: custom or the built-in default."""
    with unit_of_work() as (uow, _):
        pages = info_pages.list_pages(uow)
    rows = [
        {"reason": p.reason, "title": p.title, "custom": p.custom, "updated_by": p.updated_by}
        for p in pages
    ]
    emit(rows, as_json=as_json, title="Info pages")


@pages_app.command("show")
def pages_show(
    reason: str = typer.Argument(..., help="A suspension reason, e.g. non_payer."),
    html: bool = typer.Option(False, "--html", help="Print the sanitised HTML instead."),
    as_json: bool = JSON,
) -> None:
    """One page: its title and Markdown body (or the HTML subscribers see)."""
    with unit_of_work() as (uow, _):
        page = info_pages.get_page(uow, reason=reason)
    if as_json:
        shown = {
            "reason": page.reason,
            "title": page.title,
            "body_markdown": page.body_markdown,
            "body_html": page.body_html,
            "custom": page.custom,
            "updated_by": page.updated_by,
        }
        emit_object(shown, as_json=True, title=page.title)
        return
    typer.echo(f"# {page.title}\n")
    typer.echo(page.body_html if html else page.body_markdown)


@pages_app.command("edit")
def pages_edit(
    reason: str = typer.Argument(..., help="A suspension reason, e.g. non_payer."),
    title: str = typer.Option(..., help="The page title."),
    body: str | None = typer.Option(None, help="The body in Markdown."),
    body_file: Path | None = typer.Option(None, help="Read the Markdown body from this file."),
) -> None:
    """Write a reason's page (sanitised when served)."""
    if (body is None) == (body_file is None):
        raise ValidationError("body", "give either --body or --body-file")
    if body_file is not None:
        try:
            body = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError("body_file", f"cannot be read: {exc}") from None
    assert body is not None
    with unit_of_work() as (uow, now):
        page = info_pages.edit_page(
            uow, reason=reason, title=title, body=body, now=now, actor=ACTOR
        )
    console.print(f"page {page.reason} saved: {page.title}", markup=False)
