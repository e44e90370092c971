"""Set one message of a catalog: ``python scripts/fill_translation.py LANG MSGID TEXT``.

A small helper for translators without a .po editor; ``make i18n`` compiles afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALES = Path(__file__).resolve().parents[1] / "src" / "ispbill" / "locale"


def main() -> None:
    language, message_id, text = sys.argv[1:4]
    path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    message = catalog.get(message_id)
    if message is None:
        sys.exit(f"no message {message_id!r} in {path}; run 'make i18n' first")
    message.string = text
    message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog, width=100)


if __name__ == "__main__":
    main()
