"""Bearer tokens: who may write. Reads need none.

A token is shown once, when it is created; the database keeps only its SHA-256, which is
enough to recognise it (tokens are long and random: no salt or slow hash is needed).
"""

import hashlib
import secrets
from functools import wraps
from http import HTTPStatus

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import db
from .models import DatasetState, Token, utcnow
from .smorest import problem

# What each role may do, by the action a write view declares.
ROLES = {
    "curator": {"write"},
    "admin": {"write", "delete_sources"},  # deleting an article or an actor
}
TOKEN_PREFIX = "cft_"
REALM = "conscription-facts"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenError(ValueError):
    pass


def create_token(session: Session, name: str, role: str) -> str:
    """A new token, returned in the clear this once."""
    if role not in ROLES:
        raise TokenError(f"Unknown role {role!r}: one of {', '.join(ROLES)}.")
    if session.scalar(select(Token).where(Token.name == name)) is not None:
        raise TokenError(f"A token named {name!r} exists already (names are never reused).")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(name=name, role=role, token_hash=digest(token), created_at=utcnow()))
    return token


def revoke_token(session: Session, name: str) -> Token:
    token = session.scalar(select(Token).where(Token.name == name))
    if token is None:
        raise TokenError(f"No token named {name!r}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def list_tokens(session: Session) -> list[Token]:
    return list(session.scalars(select(Token).order_by(Token.created_at, Token.name)))


def _challenge(error: str | None = None, description: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}", error_description="{description}"'
    return {"WWW-Authenticate": value}


def unauthorized(detail: str, error: str | None = None):
    headers = _challenge(error, detail) if error else _challenge()
    return problem(HTTPStatus.UNAUTHORIZED, detail, headers)


def requires(action: str):
    """A view decorator: the request carries a valid token whose role may do `action`.

    The token's name is then `g.token_name`, recorded with every revision the write makes.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            state = db.session().get(DatasetState, 1)
            if state is not None and state.mirror_of:
                return problem(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    f"This server is a read-only mirror of {state.mirror_of}: write there.",
                    {"Allow": "GET, HEAD, OPTIONS"},
                )
            scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not credentials.strip():
                return unauthorized(
                    "This operation needs a bearer token: Authorization: Bearer <token>."
                )
            token = db.session().scalar(
                select(Token).where(Token.token_hash == digest(credentials.strip()))
            )
            if token is None:
                return unauthorized("The bearer token is not known.", "invalid_token")
            if token.revoked_at is not None:
                return unauthorized("The bearer token has been revoked.", "invalid_token")
            if action not in ROLES.get(token.role, ()):
                return problem(
                    HTTPStatus.FORBIDDEN,
                    f"A {token.role}'s token may not do this; it needs an admin's token.",
                )
            g.token_name = token.name
            # The connection goes back to the pool: the write has its own, and a body that
            # trickles in must not hold one meanwhile.
            db.session().close()
            return view(*args, **kwargs)

        wrapper._apidoc = getattr(view, "_apidoc", {})
        return wrapper

    return decorator
