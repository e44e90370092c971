"""The clock is injected: only the bootstrap owns a real one; tests move a fixed one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)  # noqa: TID251 - the one real clock, wired by the bootstrap


class FixedClock:
    """A clock that stands still until a test (or a demo) moves it."""

    def __init__(self, instant: datetime) -> None:
        self.set(instant)

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware instant")
        self._instant = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        self._instant += delta
        return self._instant


class FileClock:
    """FOR TESTS ONLY (``ISPBILL_CLOCK_FILE``): the instant written in a file, read again at
    every call, so a test moves the clock of the ``ispbill worker`` / ``serve`` processes it
    started by rewriting the file (tests/integration/test_runtime_proofs.py). Never set it in
    production: whoever can write the file sets the time the engine bills at."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        text = self.path.read_text().strip()
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is None:
            raise ValueError(f"{self.path}: {text!r} is not an instant with an offset")
        return instant.astimezone(UTC)
