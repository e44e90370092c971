"""Info pages of the walled garden: one per suspension reason, edited by the operator.

Seed 002: "Each of the reason type has its own web page onto which a client is redirected while
accessing the Internet. Configure the pages in Settings, Info Page." The operator writes a title
and a Markdown body; the body is rendered by markdown-it-py (CommonMark, raw HTML off) and the
result is sanitised again with nh3 (an allow-list of tags and attributes), so a page can never
carry a script to the subscriber even if the Markdown renderer let one through. A reason with
no page of its own shows a built-in default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import nh3
from markdown_it import MarkdownIt

from ispbill.adapters.db import event_log as events
from ispbill.adapters.db import settings_store
from ispbill.adapters.db.models import InfoPage
from ispbill.adapters.db.unit_of_work import UnitOfWork
from ispbill.domain.errors import ValidationError
from ispbill.domain.lifecycle import SuspensionReason

MAX_TITLE = 200
MAX_BODY = 20_000
REASONS = tuple(r.value for r in SuspensionReason)
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip

DEFAULTS = {
    SuspensionReason.NON_PAYER.value: (
        "Your service is suspended for an unpaid invoice",
        "Your internet access is suspended because an invoice is **overdue**.\n\n"
        "Pay the amount due below and your access comes back at once.",
    ),
    SuspensionReason.CREDIT_LIMIT.value: (
        "Your credit limit is reached",
        "Your balance has reached your credit limit. A payment restores your access at once.",
    ),
    SuspensionReason.UNREGISTERED.value: (
        "Please register your connection",
        "This connection is not registered yet. Please contact us to complete registration.",
    ),
    SuspensionReason.FUP.value: (
        "Your data allowance is used up",
        "You have used this period's data allowance. Access returns at the next period.",
    ),
}
GENERIC = (
    "Your service is suspended",
    "Your internet access is suspended. Please contact us to restore it.",
)

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


@dataclass(frozen=True)
class Page:
    reason: str
    title: str
    body_markdown: str
    custom: bool
    updated_by: str | None = None

    @property
    def body_html(self) -> str:
        return render_markdown(self.body_markdown)


def render_markdown(text: str) -> str:
    """Markdown to HTML that is safe to serve: raw HTML is escaped, then sanitised."""
    return nh3.clean(
        _markdown.render(text),
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )


def _reason(raw: str) -> str:
    reason = raw.strip().lower()
    if reason not in REASONS:
        raise ValidationError("reason", f"must be one of {', '.join(REASONS)}")
    return reason


def _default(uow: UnitOfWork, reason: str) -> Page:
    title, body = DEFAULTS.get(reason, GENERIC)
    if reason.startswith("profile_") or reason == SuspensionReason.NOT_SET.value:
        name = settings_store.load(uow).reason_name(reason)
        title = f"Your service is suspended ({name})"
    return Page(reason, title, body, custom=False)


def get_page(uow: UnitOfWork, *, reason: str) -> Page:
    key = _reason(reason)
    row = uow.session.get(InfoPage, key)
    if row is None:
        return _default(uow, key)
    return Page(key, row.title, row.body_markdown, custom=True, updated_by=row.updated_by)


def list_pages(uow: UnitOfWork) -> list[Page]:
    return [get_page(uow, reason=reason) for reason in REASONS]


def edit_page(
    uow: UnitOfWork, *, reason: str, title: str, body: str, now: datetime, actor: str
) -> Page:
    key = _reason(reason)
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise ValidationError("title", f"must be 1 to {MAX_TITLE} characters")
    if not body.strip() or len(body) > MAX_BODY:
        raise ValidationError("body", f"must be 1 to {MAX_BODY} characters of Markdown")
    if "\x00" in title or "\x00" in body:
        raise ValidationError("body", "must not contain NUL characters")
    uow.begin_write()
    row = uow.session.get(InfoPage, key)
    if row is None:
        row = InfoPage(
            reason=key, title=title, body_markdown=body, updated_at=now, updated_by=actor
        )
        uow.session.add(row)
    else:
        row.title, row.body_markdown, row.updated_at, row.updated_by = title, body, now, actor
    events.record(
        uow,
        now=now,
        actor=actor,
        kind="info_page.changed",
        subject_type="info_page",
        subject_id=REASONS.index(key),
        reason=key,
        figures={"title": title, "body_chars": len(body)},
    )
    uow.commit()
    return Page(key, title, body, custom=True, updated_by=actor)
