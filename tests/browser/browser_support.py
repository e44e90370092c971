"""Shared pieces of the browser tests (constants, the server record, screenshots)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page

from ispbill.bootstrap import App
from ispbill.clock import FixedClock

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("ISPBILL_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
SANDBOX_SECRET = "sandbox-browser-secret-0123456789abcdef"
GARDEN_SECRET = "garden-browser-secret-0123456789"
CARD_SECRET = "refill-browser-secret-0123456789"
PASSWORD = "correct horse battery"


@dataclass
class Server:
    url: str
    app: App
    clock: FixedClock


def shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=full_page)
    return target


def keep_for_docs(source: Path) -> None:
    """With ISPBILL_DOC_SCREENSHOTS=1, copy a screenshot to docs/screenshots (the README's)."""
    if os.environ.get("ISPBILL_DOC_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / source.name)
