"""The console on the API's application: ``install(app)`` adds its routes, sessions and the cookie hook;
``create_app(ctx)`` is the API's application with the console installed (what ``ember serve`` runs).

::

    GET    /console                  → 302 /console/
    GET    /console/                 → static/index.html (also /console/<deep link>)
    GET    /console/static/{path}    → files of static/
    POST   /console/session          sign in      GET /console/session   DELETE /console/session (sign out)

The console has no routes of its own for resources: the page calls the public API routes, authenticated by the
session cookie plus ``X-Ember-Csrf`` (``sessions.console_account``), with the same validation, quotas and
account scoping as a SigV4 client. The metrics the pages chart are the API's ``GET /ember/metrics``
(``ember.api.metrics``, in the API's route table).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ember.api.app import SESSION_AUTH
from ember.api.app import create_app as create_api_app
from ember.api.context import ApiContext
from ember.console import login, static
from ember.console.sessions import SESSIONS, SessionStore, console_account
from ember.console.throttle import LoginThrottle


def install(
    app: web.Application,
    *,
    sessions: SessionStore | None = None,
    throttle: LoginThrottle | None = None,
    static_dir: Path = static.STATIC_DIR,
) -> None:
    """Serve the console from ``app`` (an application made by ``ember.api.app.create_app``)."""
    app[SESSIONS] = SessionStore() if sessions is None else sessions
    app[static.STATIC_ROOT] = static_dir
    app[login.THROTTLE] = LoginThrottle() if throttle is None else throttle
    app[SESSION_AUTH] = console_account
    app.router.add_get("/console", static.redirect_to_index)
    app.router.add_route("POST", "/console/session", login.sign_in)
    app.router.add_get("/console/session", login.get_session)
    app.router.add_route("DELETE", "/console/session", login.sign_out)
    # Registered before the catch-all below: the router tries dynamic routes in order.
    app.router.add_get("/console/static/{path:.+}", static.static_file)
    app.router.add_get("/console/{tail:.*}", static.index)


def create_app(ctx: ApiContext) -> web.Application:
    """The control plane's application for ``ctx`` with the console served from it."""
    app = create_api_app(ctx)
    install(app)
    return app
