"""API tokens at rest: found by the SHA-256 of their secret (the plaintext is never stored)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ispbill.adapters.db.models import ApiToken


def by_hash(session: Session, token_hash: str) -> ApiToken | None:
    """The token whose secret hashes to ``token_hash`` (revoked and expired ones included)."""
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).one_or_none()
