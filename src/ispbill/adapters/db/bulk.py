"""Set-based writes for the tick's hot path, the fastest way each database offers.

PostgreSQL: ids are taken from the sequence in one round trip, rows go in with COPY, and many
rows are updated by one ``UPDATE ... FROM unnest(arrays)`` statement. SQLite (in-process, one
writer under BEGIN IMMEDIATE): ids follow ``max(id)`` and rows go through SQLAlchemy Core
executemany, which is already cheap there. Callers hand plain dicts keyed by column name; the
same constraints and triggers apply as for any other write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Json
from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    any_,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import ARRAY

PG_ARRAY_TYPES = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "VARCHAR": "text",
    "TEXT": "text",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "DATETIME": "timestamptz",
    "TIMESTAMP": "timestamptz",
    "JSON": "json",
}


def id_in(column: Any, ids: Sequence[int], dialect: str) -> ColumnElement[bool]:
    """``column IN ids`` as one array parameter on PostgreSQL (thousands of placeholders cost
    more to send and parse than the query itself)."""
    if dialect == "postgresql":
        return column == any_(literal(list(ids), type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(list(ids))  # type: ignore[no-any-return]


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, taken before the rows are written."""
    if count == 0:
        return []
    if connection.dialect.name == "postgresql":
        sequence = f"{table.name}_id_seq"
        rows = connection.execute(
            text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"), {"n": count}
        )
        return [int(r[0]) for r in rows]
    start = int(connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
    return list(range(start + 1, start + 1 + count))


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL, Core executemany on SQLite."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    json_columns = {c for c in columns if _type_name(table, c) == "JSON"}
    raw = connection.connection.driver_connection
    assert raw is not None
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                [
                    Json(row[c]) if c in json_columns and row[c] is not None else row[c]
                    for c in columns
                ]
            )


def update_rows(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], *, key: str = "id"
) -> None:
    """Update many rows by primary key, each with its own values for the same columns."""
    if not rows:
        return
    columns = [c for c in rows[0] if c != key]
    if connection.dialect.name != "postgresql":
        statement = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({c: bindparam(f"_v_{c}") for c in columns})
        )
        params = [{"_key": r[key], **{f"_v_{c}": r[c] for c in columns}} for r in rows]
        connection.execute(statement, params)
        return
    names = [key, *columns]
    casts = [f"%s::{_pg_type(table, c)}[]" for c in names]
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    sql = (
        f"UPDATE {table.name} AS t SET {assignments} "
        f"FROM unnest({', '.join(casts)}) AS v({', '.join(names)}) WHERE t.{key} = v.{key}"
    )
    arrays = [[r[c] for r in rows] for c in names]
    connection.exec_driver_sql(sql, tuple(arrays))


def add_to_balances(connection: Connection, table: Table, deltas: dict[int, int]) -> None:
    """balance_minor += delta for many accounts in one statement, in id order."""
    changed = sorted((aid, delta) for aid, delta in deltas.items() if delta)
    if not changed:
        return
    if connection.dialect.name != "postgresql":
        statement = (
            update(table)
            .where(table.c.id == bindparam("aid"))
            .values(balance_minor=table.c.balance_minor + bindparam("delta"))
        )
        connection.execute(statement, [{"aid": a, "delta": d} for a, d in changed])
        return
    connection.exec_driver_sql(
        f"UPDATE {table.name} AS t SET balance_minor = t.balance_minor + v.delta "
        "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, delta) WHERE t.id = v.id",
        ([a for a, _ in changed], [d for _, d in changed]),
    )


def _type_name(table: Table, column: str) -> str:
    """The generic type name of a column, looking through TypeDecorators (UTCDateTime)."""
    kind = table.c[column].type
    impl = getattr(kind, "impl", kind)
    return (impl.__name__ if isinstance(impl, type) else type(impl).__name__).upper()


def _pg_type(table: Table, column: str) -> str:
    name = _type_name(table, column)
    if name in PG_ARRAY_TYPES:
        return PG_ARRAY_TYPES[name]
    for prefix, pg in (("BIG", "bigint"), ("INT", "integer"), ("STR", "text"), ("DATE", "date")):
        if name.startswith(prefix):
            return pg
    raise TypeError(f"no PostgreSQL array type for {table.name}.{column} ({name})")
