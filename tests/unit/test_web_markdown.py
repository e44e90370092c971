"""Operator Markdown is rendered, and whatever HTML it smuggles is sanitised."""

from __future__ import annotations

import re

import pytest

from ispbill.entrypoints.pages import render_markdown


def test_markdown_renders() -> None:
    html = render_markdown("# Paused\n\nPay **two months** at [the bank](https://bank.example).")
    assert "<h1>Paused</h1>" in html
    assert "<strong>two months</strong>" in html
    assert 'href="https://bank.example"' in html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<iframe src="https://evil.example"></iframe>',
        '<p style="background:url(javascript:alert(1))">x</p>',
    ],
)
def test_markdown_is_sanitised(attack: str) -> None:
    """Raw HTML is shown as text or dropped; no live tag, handler, style or script link."""
    html = str(render_markdown(attack)).lower()
    tags = re.findall(r"<[a-z][^>]*>", html)
    for tag in tags:
        assert not tag.startswith(("<script", "<img", "<iframe")), tag
        assert not re.search(r"\bon\w+=|style=|javascript:", tag), tag
