"""Console sessions: an access key pair exchanged once for an opaque cookie, kept in this process's memory.

A browser cannot sign SigV4 from a plain-http page (no WebCrypto there) and should not hold the secret key in
page JavaScript, so ``POST /console/session`` checks the key pair once and sets the ``ember_console`` cookie.
Afterwards the console calls the ordinary API routes with that cookie plus the session's CSRF token in
``X-Ember-Csrf``; ``console_account`` is the hook ``ember.api.app.authenticate`` calls for them.

Only the SHA-256 of a cookie value is kept, so a dump of this memory holds no usable cookie. Sessions end
``SESSION_MAX_AGE_S`` after sign-in, ``SESSION_IDLE_S`` after their last use, when their access key is deleted,
on sign-out, or when the process restarts (nothing is persisted: a restart signs everyone out). Each account
keeps at most ``MAX_SESSIONS_PER_ACCOUNT``; a new one pushes out the least recently used.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.orm import Session

from ember.api.app import CTX, Caller
from ember.contract.errors import AccessDeniedException
from ember.store import accounts

COOKIE_NAME = "ember_console"
CSRF_HEADER = "X-Ember-Csrf"
SESSION_MAX_AGE_S = 8 * 3600
"""Absolute lifetime: a working day, after which the key pair must be typed again."""
SESSION_IDLE_S = 3600
"""A session unused this long ends (a browser left open on a shared machine)."""
MAX_SESSIONS_PER_ACCOUNT = 20
"""Bounds memory per account: sign-ins from a script loop cannot grow the table without end."""
TOKEN_BYTES = 32
"""Random bytes in a cookie value and in a CSRF token (256 bits: not guessable)."""


@dataclass
class ConsoleSession:
    """One signed-in browser: whose it is, its CSRF token and its clock (epoch seconds)."""

    account_id: str
    access_key_id: str
    csrf_token: str
    created_at: float
    expires_at: float
    """Absolute end: ``created_at + SESSION_MAX_AGE_S``."""
    last_used_at: float


def _bytes(text: str) -> bytes:
    # Header values may hold any code point; an odd one must compare unequal, not raise.
    return text.encode("utf-8", "surrogatepass")


def _digest(cookie: str) -> str:
    return hashlib.sha256(_bytes(cookie)).hexdigest()


class SessionStore:
    """The live console sessions of this process, keyed by the SHA-256 of their cookie value."""

    def __init__(
        self,
        *,
        max_age_s: float = SESSION_MAX_AGE_S,
        idle_s: float = SESSION_IDLE_S,
        max_per_account: int = MAX_SESSIONS_PER_ACCOUNT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self.max_per_account = max_per_account
        self.clock = clock
        self._sessions: dict[str, ConsoleSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def _alive(self, session: ConsoleSession, now: float) -> bool:
        return now < session.expires_at and now - session.last_used_at < self.idle_s

    def create(self, account_id: str, access_key_id: str) -> tuple[str, ConsoleSession]:
        """A new session for ``account_id``: the cookie value (never stored) and the session."""
        now = self.clock()
        self._sessions = {k: s for k, s in self._sessions.items() if self._alive(s, now)}
        mine = sorted(
            ((s.last_used_at, k) for k, s in self._sessions.items() if s.account_id == account_id),
        )
        for _, key in mine[: max(0, len(mine) - self.max_per_account + 1)]:
            del self._sessions[key]
        cookie = secrets.token_urlsafe(TOKEN_BYTES)
        session = ConsoleSession(
            account_id=account_id,
            access_key_id=access_key_id,
            csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
            created_at=now,
            expires_at=now + self.max_age_s,
            last_used_at=now,
        )
        self._sessions[_digest(cookie)] = session
        return cookie, session

    def use(self, cookie: str | None) -> ConsoleSession | None:
        """The live session of ``cookie`` with its idle clock restarted, or None (an ended one is dropped)."""
        if not cookie:
            return None
        key = _digest(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self.clock()
        if not self._alive(session, now):
            del self._sessions[key]
            return None
        session.last_used_at = now
        return session

    def revoke(self, cookie: str | None) -> bool:
        """End the session of ``cookie``; True if there was one."""
        if not cookie:
            return False
        return self._sessions.pop(_digest(cookie), None) is not None


SESSIONS = web.AppKey("ember_console_sessions", SessionStore)
"""Where the application keeps its session table (installed by ``ember.console.app.install``)."""


def csrf_matches(request: web.Request, session: ConsoleSession) -> bool:
    """Whether ``X-Ember-Csrf`` carries the session's token (constant-time comparison)."""
    supplied = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(_bytes(supplied), _bytes(session.csrf_token))


def _live(request: web.Request) -> ConsoleSession:
    session = request.app[SESSIONS].use(request.cookies.get(COOKIE_NAME))
    if session is None:
        raise AccessDeniedException(
            "no console session: it ended (signed out, expired or the server restarted); sign in again"
        )
    return session


async def _check_key(request: web.Request, session: ConsoleSession) -> None:
    def key_account(db: Session) -> str | None:
        key = accounts.find_access_key(db, session.access_key_id)
        return None if key is None else str(key.account_id)

    if await request.app[CTX].store.aread(key_account) != session.account_id:
        # The key was deleted (or moved to another account): what it signed in ends with it.
        request.app[SESSIONS].revoke(request.cookies.get(COOKIE_NAME))
        raise AccessDeniedException("the access key of this console session no longer exists; sign in again")


async def current_session(request: web.Request) -> ConsoleSession:
    """The request's live session whose access key still exists; AccessDeniedException otherwise."""
    session = _live(request)
    await _check_key(request, session)
    return session


async def console_account(request: web.Request) -> Caller | None:
    """The account and access key of the request's console session, for ``authenticate``; None if it has no console
    cookie.

    A request with the cookie but no live session, or without the session's token in ``X-Ember-Csrf`` (required
    on every method, reads included: one rule, no list of safe routes to keep right), is AccessDeniedException.
    """
    if COOKIE_NAME not in request.cookies:
        return None
    session = _live(request)
    if not csrf_matches(request, session):
        raise AccessDeniedException(
            f"console requests must carry the session's CSRF token in the {CSRF_HEADER} header "
            "(GET /console/session returns it)"
        )
    await _check_key(request, session)
    return Caller(session.account_id, session.access_key_id)
