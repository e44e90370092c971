"""The test-only file clock (``ISPBILL_CLOCK_FILE``): processes a test starts read the instant
the test writes, at every call; the bootstrap uses it only when the setting is present."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ispbill.bootstrap import default_clock
from ispbill.clock import FileClock, SystemClock
from ispbill.settings import Settings


def test_the_file_clock_reads_the_instant_written_at_each_call(tmp_path: Path) -> None:
    path = tmp_path / "now"
    path.write_text("2026-03-01T00:00:00+01:00\n")
    clock = FileClock(path)
    assert clock.now() == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    path.write_text("2026-03-02T00:00:00Z")
    assert clock.now() == datetime(2026, 3, 2, tzinfo=UTC)
    path.write_text("2026-03-02T00:00:00")
    with pytest.raises(ValueError, match="not an instant with an offset"):
        clock.now()


def test_the_bootstrap_uses_it_only_when_the_setting_is_present(tmp_path: Path) -> None:
    assert isinstance(default_clock(Settings(clock_file=None)), SystemClock)
    chosen = default_clock(Settings(clock_file=str(tmp_path / "now")))
    assert isinstance(chosen, FileClock)
    assert chosen.path == tmp_path / "now"
