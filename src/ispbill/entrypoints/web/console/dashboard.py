"""The console's home (``/console``): revenue and payments by month, services by state, and
the customers at risk."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from ispbill.domain.lifecycle import ServiceState
from ispbill.entrypoints.pages import Formats
from ispbill.entrypoints.web import charts
from ispbill.entrypoints.web.common import (
    Staff,
    gettext_for,
    language_of,
    scope_of,
    staff_page,
    work,
)
from ispbill.use_cases.queries import dashboard as console_views

router = APIRouter(prefix="/console", include_in_schema=False)
# the states charted month by month (pending and ended say nothing of the business)
SHOWN_STATES = [
    ServiceState.ACTIVE,
    ServiceState.SUSPENDED,
    ServiceState.DEACTIVATED,
    ServiceState.PAUSED,
]


@router.get("")
async def dashboard(request: Request, staff: Staff) -> Response:
    board = await work(
        request,
        lambda uow, now: console_views.dashboard(uow.session, scope=scope_of(staff), now=now),
    )
    _ = gettext_for(request, staff)
    fmt = Formats(language_of(request, staff))
    labels = [fmt.month(k) for k in board.months]
    money_charts = []
    for title, table in ((_("Revenue (charges)"), board.revenue), (_("Payments"), board.payments)):
        for currency, by_month in sorted(table.items()):
            values = [by_month.get(k, 0) for k in board.months]
            series = [charts.Series(currency, values)]
            money_charts.append(
                {
                    "title": f"{title}, {currency}",
                    "svg": Markup(charts.bar_chart(labels, series, f"{title} {currency}")),
                    "rows": [
                        (label, fmt.minor(v, currency))
                        for label, v in zip(labels, values, strict=True)
                    ],
                }
            )
    shown_states = [s.value for s in SHOWN_STATES]
    state_series = [charts.Series(_(s), board.states.get(s, [])) for s in shown_states]
    states_svg = Markup(charts.line_chart(labels, state_series, _("Services by state")))
    return staff_page(
        request,
        staff,
        "console/dashboard.html",
        {
            "board": board,
            "labels": labels,
            "money_charts": money_charts,
            "states_svg": states_svg,
            "shown_states": shown_states,
        },
    )
