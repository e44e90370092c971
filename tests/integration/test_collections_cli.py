"""Collections through the CLI (Typer's runner), on both databases: the policy, a non-payer
suspended by ``run`` and explained by ``services why``, a manual suspension and its lift, a
promise, the info pages, and refusals that exit 2 naming the field and write nothing."""

from __future__ import annotations

from pathlib import Path

from test_engine_cli import invoke, ok, ok_json, refused, row_counts, seed

from ispbill.bootstrap import bootstrap
from scenarios.helpers import check_books

START = "2026-01-01T09:00:00Z"
DEBTOR = ["Bob", "--balance-control", "postpaid"]


def test_a_non_payer_from_policy_to_promise(database_url: str) -> None:
    url = database_url
    seed(url, DEBTOR)
    ok(url, START, "run")
    ok(url, START, "collection", "set", "enabled=true", "days_after_due=14")
    shown = {r["key"]: r["value"] for r in ok_json(url, START, "collection", "show")}
    assert (shown["enabled"], shown["days_after_due"]) == (True, 14)
    ok(url, "2026-01-30T01:00:00Z", "run")
    why = ok(url, "2026-01-30T02:00:00Z", "services", "why", "1").stdout
    assert "suspended as a non-payer" in why
    assert "36.30 USD" in why
    assert "15 days after its due date" in why
    promised = ok(url, "2026-01-30T03:00:00Z", "services", "promise", "1", "--days", "3")
    assert "until 2026-02-02T03:00:00+00:00" in promised.stdout
    ok(url, "2026-02-02T03:00:00Z", "run")
    rows = ok_json(url, "2026-02-02T04:00:00Z", "services", "list")
    assert rows[0]["state"] == "suspended (non_payer)"
    ok(url, "2026-02-02T05:00:00Z", "payments", "add", "1", "36.30", "--reference", "r1")
    rows = ok_json(url, "2026-02-02T05:00:00Z", "services", "list")
    assert rows[0]["state"] == "active"
    _check(url)


def test_manual_suspension_pages_and_refusals(database_url: str, tmp_path: Path) -> None:
    url = database_url
    seed(url, DEBTOR)
    ok(url, START, "run")
    ok(url, START, "settings", "set", "suspension_profile_names", "profile_3=Copyright")
    made = ok_json(
        url, START, "services", "suspend", "1", "--reason", "profile_3", "--note", "DMCA"
    )
    assert (made["status"], made["reason"]) == ("active", "profile_3")
    why = ok(url, START, "services", "why", "1").stdout
    assert "'Copyright'" in why
    assert "services lift 1" in why
    before = row_counts(url)
    for args, field in [
        (["services", "suspend", "1", "--reason", "profile_4"], "service"),
        (["services", "suspend", "2", "--reason", "profile_4"], "service"),
        (["services", "suspend", "1", "--reason", "fup"], "reason"),
        (["services", "promise", "1", "--days", "3"], "service"),
        (["collection", "set", "days_after_due=-1"], "days_after_due"),
        (["collection", "set", "nonsense"], "nonsense"),
        (["collection", "set", "reactivation_fee=1.234"], "reactivation_fee"),
        (["pages", "edit", "bogus", "--title", "x", "--body", "y"], "reason"),
        (["pages", "edit", "non_payer", "--title", "", "--body", "y"], "title"),
        (["services", "why", "x"], "service"),
    ]:
        assert refused(url, START, *args).startswith(f"error: {field}"), args
    assert row_counts(url) == before
    lifted = ok_json(url, "2026-01-02T09:00:00Z", "services", "lift", "1", "--note", "resolved")
    assert (lifted["status"], lifted["lifted_by"]) == ("lifted", "admin:cli")
    body = tmp_path / "page.md"
    body.write_text("Access is **blocked**.\n\n<img src=x onerror=alert(1)>", encoding="utf-8")
    ok(url, START, "pages", "edit", "profile_3", "--title", "Blocked", "--body-file", str(body))
    html = ok(url, START, "pages", "show", "profile_3", "--html").stdout
    assert "<strong>blocked</strong>" in html
    assert "<img" not in html
    listed = {p["reason"]: p["custom"] for p in ok_json(url, START, "pages", "list")}
    assert listed["profile_3"] is True
    assert listed["non_payer"] is False
    link = invoke(url, START, "services", "garden-link", "1")
    assert link.exit_code == 2
    assert "ISPBILL_GARDEN_SECRET" in link.stderr
    _check(url)


def test_lifting_a_yearly_window_keeps_next_year_unless_all(database_url: str) -> None:
    url = database_url
    seed(url, DEBTOR)
    ok(url, START, "run")
    window = ["--from", "2026-07-01", "--to", "2026-08-31", "--repeat"]
    ok(url, START, "services", "suspend", "1", "--reason", "profile_1", *window)
    ok(url, "2026-07-01T00:01:00Z", "run")
    lifted = ok_json(url, "2026-07-15T09:00:00Z", "services", "lift", "1")
    assert (lifted["status"], lifted["ends_on"]) == ("lifted", "2026-07-14")
    following = lifted["next_occurrence"]
    assert (following["status"], following["starts_on"], following["ends_on"]) == (
        "planned",
        "2027-07-01",
        "2027-08-31",
    )
    assert following["repeat_yearly"] is True
    ended = ok_json(url, "2026-07-16T09:00:00Z", "services", "lift", "1", "--all")
    assert (ended["id"], ended["status"]) == (following["id"], "lifted")
    assert ended["next_occurrence"] is None
    ok(url, "2027-07-01T00:01:00Z", "run")
    assert ok_json(url, "2027-07-01T01:00:00Z", "services", "list")[0]["state"] == "active"
    _check(url)


def _check(url: str) -> None:
    app = bootstrap(database_url=url)
    try:
        check_books(app)
    finally:
        app.close()
