"""What the database said, as an ispbill error: the entry points report it without knowing
SQLAlchemy (the CLI prints one line, exit status 2).

``reported()`` wraps a command's work; a refusal by a constraint, a value the database would not
store and a database that cannot be used come out as ``DatabaseProblem`` with the driver's first
line, never claiming what was (not) written: a command that commits in several transactions
says that itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from ispbill.domain.errors import IspbillError


class DatabaseProblem(IspbillError):
    """The database refused a statement (``unusable`` False: that unit of work was rolled back
    whole) or could not be used at all (``unusable`` True)."""

    def __init__(self, message: str, *, unusable: bool) -> None:
        self.unusable = unusable
        super().__init__(message)


def problem_of(exc: DBAPIError) -> DatabaseProblem:
    """One line: what kind of refusal, then the driver's first line (no DETAIL/HINT lines)."""
    if isinstance(exc, IntegrityError):
        return DatabaseProblem(
            f"database: refused by a constraint ({_first_line(exc.orig)})", unusable=False
        )
    if isinstance(exc, OperationalError):
        return DatabaseProblem(f"database: cannot be used ({_first_line(exc.orig)})", unusable=True)
    return DatabaseProblem(f"database: refused a value ({_first_line(exc.orig)})", unusable=False)


@contextmanager
def reported() -> Iterator[None]:
    """Turn the database's own errors raised inside into ``DatabaseProblem``."""
    try:
        yield
    except DBAPIError as exc:
        raise problem_of(exc) from exc


def _first_line(error: BaseException | None) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__
