"""Each request is one unit of work: a deadlock victim or a transient Azure SQL error runs the handler again,
and a database that cannot be had in time (pool or lock timeout, SQLite busy) is a 503 `database_busy`.

The retry wraps the route handler (Quart's `dispatch_request`), so it sits inside the error handlers:
when the retries run out, the error is answered as usual. A handler is run again only while its
request has not committed anything: the first transaction of a handler is all-or-nothing, and the
rollback of the request session undoes it. A handler that commits and then fails (say, a payment
settled after the gateway call) is not rerun whole; the controller retries that later unit itself
(see `payment_controller.pay_coupon`), so no side effect outside the database happens twice.
"""

from __future__ import annotations

from typing import Any

from quart import Quart, g
from sqlalchemy import event
from sqlalchemy.orm import Session

from clients.sql_client import is_busy_error, is_transient_error, retry_unit_of_work
from controllers.errors import ServiceUnavailable

COMMITTED = "cuponera_committed"
# Seconds a client should wait before trying a request the database was too busy for.
BUSY_RETRY_AFTER_SECONDS = 1
# What routes/common.py caches per request on `g`: the session and what was loaded through it.
_REQUEST_STATE = ("db_session", "principal", "tenant")


@event.listens_for(Session, "after_commit")
def _mark_committed(session: Session) -> None:
    """Remember on the session that it committed, which makes rerunning its handler unsafe."""
    session.info[COMMITTED] = True


def _request_committed() -> bool:
    session = g.get("db_session")
    return session is not None and bool(session.sync_session.info.get(COMMITTED))


async def _discard_request_state() -> None:
    """Roll back and forget the request's session and what was loaded through it."""
    session = g.get("db_session")
    for name in _REQUEST_STATE:
        g.pop(name, None)
    if session is not None:
        await session.close()


def retry_transient_requests(app: Quart) -> None:
    """Rerun a route handler that met a transient database error before it committed anything."""
    dispatch = app.dispatch_request

    async def dispatch_request(request_context: Any = None) -> Any:
        try:
            return await retry_unit_of_work(
                lambda: dispatch(request_context),
                rollback=_discard_request_state,
                may_retry=lambda: not _request_committed(),
            )
        except Exception as exc:
            if not (is_transient_error(exc) or is_busy_error(exc)):
                raise
            # Out of attempts, the handler had committed, or the database could not be had within
            # the pool or lock timeout (never retried here: the client already waited that long).
            # Nothing half-done stays, so the client may simply try again; with an Idempotency-Key
            # a payment replays safely.
            raise database_busy() from exc

    app.dispatch_request = dispatch_request  # type: ignore[method-assign]


def database_busy() -> ServiceUnavailable:
    """The 503 `database_busy` answer, with Retry-After."""
    return ServiceUnavailable(
        "The database is busy; try again in a moment.", code="database_busy",
        extra={"retry_after": BUSY_RETRY_AFTER_SECONDS},
    )
