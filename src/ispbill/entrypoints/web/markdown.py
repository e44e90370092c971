"""Operator-written Markdown (info pages, notices) to safe HTML: Python-Markdown renders, then
nh3 (the Ammonia sanitiser) keeps only an allow-list of tags and attributes, so a script, an
event handler or a ``javascript:`` link never reaches a subscriber's browser."""

from __future__ import annotations

import markdown as markdown_lib
import nh3
from markupsafe import Markup

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}}


def render_markdown(text: str) -> Markup:
    html = markdown_lib.markdown(text, extensions=["tables"], output_format="html")
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)
