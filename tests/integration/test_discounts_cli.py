"""``ispbill discounts add|list|end`` end to end through Typer's runner, on both databases:
a service's 10 % for two periods and a customer's 5.00 off, priced by the tick as their own
charges; refusals that name the field and write nothing; ending a discount."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner, Result

from ispbill.entrypoints.cli.main import app as cli

runner = CliRunner()
START = "2026-01-01T09:00:00Z"
JAN15 = "2026-01-15T10:00:00Z"
FEB1 = "2026-02-01T06:00:00Z"
MAR1 = "2026-03-01T06:00:00Z"


def invoke(url: str, now: str, *args: str) -> Result:
    return runner.invoke(cli, ["--database-url", url, "--now", now, *args])


def ok(url: str, now: str, *args: str) -> Result:
    result = invoke(url, now, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def ok_json(url: str, now: str, *args: str) -> Any:
    return json.loads(ok(url, now, *args, "--json").stdout)


def refused(url: str, now: str, *args: str) -> str:
    result = invoke(url, now, *args)
    assert result.exit_code == 2, (args, result.output)
    return result.stderr


def balance(url: str, customer: str) -> str:
    return str(ok_json(url, START, "customers", "show", customer)["balance"])


def test_discounts_add_list_end(database_url: str) -> None:
    url = database_url
    ok(url, START, "classes", "add", "Residential")
    ok(url, START, "plans", "add", "Home 31", "--price", "31.00", "--currency", "USD",
       "--download", "50M", "--upload", "10M")  # fmt: skip
    ok(url, START, "customers", "add", "Alice", "--class", "Residential", "--currency", "USD",
       "--available-funds", "100.00")  # fmt: skip
    ok(url, START, "services", "add", "--customer", "Alice", "--plan", "Home 31")
    ok(url, START, "run")
    assert balance(url, "Alice") == "69.00 USD"

    for args, message in (
        (("--service", "1", "--percent", "0", "--periods", "2"), "percent: must be a whole"),
        (("--service", "1", "--amount", "-1", "--periods", "2"), "amount:"),
        (("--service", "1", "--percent", "10"), "periods: give exactly one of periods and until"),
        (("--percent", "10", "--periods", "1"), "customer: give exactly one of customer and"),
        (("--service", "9", "--percent", "10", "--periods", "1"), "service: no service '9'"),
    ):
        assert message in refused(url, JAN15, "discounts", "add", *args), args
    assert ok_json(url, JAN15, "discounts", "list") == []

    service = ok_json(url, JAN15, "discounts", "add", "--service", "1", "--percent", "10",
                      "--periods", "2", "--reason", "Welcome")  # fmt: skip
    assert (service["off"], service["periods"], service["starts_on"]) == ("10 %", 2, "2026-01-15")
    customer = ok_json(url, JAN15, "discounts", "add", "--customer", "Alice", "--amount", "5.00",
                       "--until", "2026-02-28")  # fmt: skip
    assert (customer["service"], customer["off"]) == ("(every service)", "5.00 USD")

    ok(url, FEB1, "run")
    # 31.00 - 3.10 (10 %) - 5.00 = 22.90
    assert balance(url, "Alice") == "46.10 USD"
    given = {d["id"]: d["given"] for d in ok_json(url, FEB1, "discounts", "list")}
    assert given == {service["id"]: "3.10 USD", customer["id"]: "5.00 USD"}

    ended = ok_json(url, "2026-02-10T09:00:00Z", "discounts", "end", str(service["id"]))
    assert ended["ended_on"] == "2026-02-10"
    assert "discount: discount 1 already ended" in refused(
        url, "2026-02-11T09:00:00Z", "discounts", "end", str(service["id"])
    )
    ok(url, MAR1, "run")  # both over: the full price
    assert balance(url, "Alice") == "15.10 USD"
