"""CSV downloads of the console's lists (UTF-8 with a header row; spreadsheet formulas
neutralised so a customer named ``=HYPERLINK(...)`` stays text)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence

from fastapi.responses import Response, StreamingResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(
    filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]
) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _line(row: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([cell(v) for v in row])
    return buffer.getvalue()


def csv_stream(
    filename: str, header: Sequence[str], batches: AsyncIterator[Sequence[Sequence[object]]]
) -> StreamingResponse:
    """A CSV sent while it is read, a batch of rows at a time: a list of millions of rows
    never sits whole in memory."""

    async def body() -> AsyncIterator[bytes]:
        yield _line(header).encode("utf-8")
        async for rows in batches:
            yield "".join(_line(row) for row in rows).encode("utf-8")

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
