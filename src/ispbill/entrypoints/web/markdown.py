"""Operator-written Markdown for the pages: the info pages' renderer (use_cases/collections/info_pages.py:
markdown-it-py with raw HTML off, then nh3's allow-list), marked safe for Jinja only after
that sanitising."""

from __future__ import annotations

from markupsafe import Markup

from ispbill.use_cases.collections.info_pages import render_markdown as sanitised_html


def render_markdown(text: str) -> Markup:
    return Markup(sanitised_html(text))
