"""The web pages' catalogs: every message of the pages is translated into Czech (and English,
the source language), placeholders survive translation, and the committed .mo files are the
compiled .po files (``make i18n`` rebuilds them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).resolve().parents[2] / "src" / "ispbill" / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def catalog(language: str, suffix: str = "po"):  # type: ignore[no-untyped-def]
    path = LOCALES / language / "LC_MESSAGES" / f"messages.{suffix}"
    with path.open("rb") as handle:
        return read_po(handle, locale=language) if suffix == "po" else read_mo(handle)


def template_ids() -> set[str]:
    with (LOCALES / "messages.pot").open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


@pytest.mark.parametrize("language", ["en", "cs"])
def test_every_message_is_translated(language: str) -> None:
    translated = {m.id: m for m in catalog(language) if m.id}
    missing = sorted(i for i in template_ids() if not translated.get(i) or not translated[i].string)
    fuzzy = sorted(i for i, m in translated.items() if m.fuzzy)
    assert missing == []
    assert fuzzy == []


@pytest.mark.parametrize("language", ["en", "cs"])
def test_placeholders_survive_translation(language: str) -> None:
    for message in catalog(language):
        if not (message.id and message.string):
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == wanted, message.id


@pytest.mark.parametrize("language", ["en", "cs"])
def test_compiled_catalogs_are_current(language: str) -> None:
    compiled = catalog(language, "mo")
    source = catalog(language)
    assert {flat(m.id): flat(m.string) for m in compiled if m.id} == {
        flat(m.id): flat(m.string) for m in source if m.id and m.string
    }, "run 'make i18n' to recompile"


def flat(value: object) -> object:
    """Plural messages are tuples in a .po and lists in a .mo."""
    return tuple(value) if isinstance(value, list | tuple) else value


def test_the_template_lists_every_message_of_the_pages() -> None:
    templates = Path(__file__).resolve().parents[2] / "src" / "ispbill" / "entrypoints" / "web"
    spelled = set()
    for path in templates.rglob("*.html"):
        spelled |= set(re.findall(r'_\("([^"]+)"', path.read_text(encoding="utf-8")))
    assert spelled - template_ids() == set(), "run 'make i18n'"
