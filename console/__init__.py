"""The agent console: billing agents work the email tickets and the chats handed to them, in the browser.

A Flask application built by ``create_app`` (the application factory), one blueprint per area: ``auth`` (sign-in,
sessions, password, language), ``queues`` (worklists), ``tickets`` (a ticket and what agents do to it), ``chat``
(what agents do in a handed-off chat), ``widget`` (the chat hub the support site's widget talks to), ``admin``
(mail that needs a person, the audit trail) and ``live`` (server-sent events). Views are thin: they adapt the
request, call the core (``core.tickets``, ``core.ticket_actions``...), and render a template that escapes
everything. Sessions, CSRF, forms and translations come from Flask-Login, Flask-WTF and Flask-Babel.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from console import admin, auth, chat, i18n, live, queues, security, state, tickets, widget
from console.extensions import babel, csrf, login_manager
from core.settings import Settings

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, config: dict[str, Any] | None = None) -> Flask:
    """The console for ``settings`` (from the environment by default); ``config`` overrides Flask's settings
    (tests)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.session_secret(),
        SESSION_COOKIE_NAME="billing_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (which expires by itself)
        WTF_CSRF_SSL_STRICT=settings.secure_cookies,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE=settings.display_timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(i18n.compiled_catalogs(settings.var_dir)),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.update(config or {})
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    app.extensions["billing"] = state.ConsoleState.build(settings)
    state.install(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=lambda: settings.display_timezone)
    i18n.install_filters(app)
    security.install(app)
    for blueprint in (auth.blueprint, queues.blueprint, tickets.blueprint, chat.blueprint, admin.blueprint,
                      live.blueprint):
        app.register_blueprint(blueprint)
    widget.install(app)
    return app
