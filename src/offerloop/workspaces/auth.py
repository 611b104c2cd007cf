"""FastAPI dependencies: the database, and the caller's API key (HTTP Basic user or Bearer)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from offerloop.db.uow import Database
from offerloop.workspaces import service
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired
from offerloop.workspaces.schemas import Principal


def key_from_header(header: str | None) -> str:
    if not header:
        return ""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidKey("malformed HTTP Basic credentials") from exc
        return decoded.partition(":")[0]  # Segment convention: the write key is the username
    raise InvalidKey("unsupported Authorization scheme: use Basic (key as username) or Bearer")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _db(request: Request) -> Database:
    # The dependency is async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a
    # thread hop on every request for an attribute read.
    return get_db(request)


def get_settings(request: Request) -> Any:
    return request.app.state.settings


def signing_secret(request: Request) -> str:
    """The secret that signs links and tokens: the configured one, else the one kept in the database."""
    with get_db(request).read() as session:
        return service.signing_secret(session=session, configured=get_settings(request).secret)


def authenticate_request(request: Request) -> Principal:
    """Any valid key of a workspace: write keys may send events, nothing else."""
    key = key_from_header(request.headers.get("authorization"))
    cached = service.cached_principal(key)
    if cached is not None:
        return cached  # no read transaction for a key seen in the last half second
    with get_db(request).read() as session:
        return service.authenticate(session=session, key=key)


# Where the body guard leaves the principal it authenticated (before reading the body) for the route.
PRINCIPAL_SCOPE_KEY = "offerloop.principal"


async def authenticate_request_async(request: Request) -> Principal:
    """As authenticate_request; a recently seen key is answered from memory without a thread hop, and a
    request the body guard already authenticated is not authenticated twice."""
    known = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(known, Principal):
        return known
    cached = service.cached_principal(key_from_header(request.headers.get("authorization")))
    return cached if cached is not None else await run_in_threadpool(authenticate_request, request)


async def require_secret(principal: Annotated[Principal, Depends(authenticate_request_async)]) -> Principal:
    if not principal.is_secret:
        raise SecretKeyRequired("this endpoint needs a secret key; write keys can only send events")
    return principal


DB = Annotated[Database, Depends(_db)]
AnyKey = Annotated[Principal, Depends(authenticate_request_async)]
SecretKey = Annotated[Principal, Depends(require_secret)]


def authenticate_key_or_query(request: Request) -> Principal:
    """A key from the Authorization header or, for pages a browser opens directly (the hosted quiz), from
    the ``key`` query parameter: only write keys may travel in a URL."""
    header = request.headers.get("authorization")
    if header:
        return authenticate_request(request)
    with get_db(request).read() as session:
        principal = service.authenticate(session=session, key=request.query_params.get("key", ""))
    if principal.is_secret:
        raise InvalidKey("secret keys must not be put in URLs: use the write key")
    return principal


KeyOrQuery = Annotated[Principal, Depends(authenticate_key_or_query)]
