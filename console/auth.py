"""Signing in and out, changing one's password, choosing the console's language.

Flask-Login keeps, in the signed session cookie, a random token whose SHA-256 names a server-side session
(``core.signin``): logging out, changing the password or an expiry ends it for good, whatever the browser keeps.
Sign-in is throttled per account and per client address with a growing lock (``core.signin``), and takes as long
for an unknown email as for a known one.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from console.extensions import login_manager
from console.state import db
from core.agents import AgentError, AgentView, agent_by_email, change_password, check_password, spend_equal_time, view_of
from core.db.models import Agent
from core.language import SUPPORTED_LANGUAGES
from core.signin import (
    agent_of_session,
    end_all_sessions,
    end_session,
    locked_for,
    open_session,
    record_failure,
    record_success,
)

logger = logging.getLogger(__name__)
blueprint = Blueprint("auth", __name__)


class ConsoleAgent(AgentView):
    """The signed-in agent, as Flask-Login knows them: their id for Flask-Login is their session's token."""

    token: str = ""

    @classmethod
    def of(cls, agent: Any, token: str) -> ConsoleAgent:
        view = view_of(agent)
        signed_in = cls(**{name: getattr(view, name) for name in view.__dataclass_fields__})
        object.__setattr__(signed_in, "token", token)
        return signed_in

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return self.token


@login_manager.user_loader
def load_agent(token: str) -> ConsoleAgent | None:
    agent = agent_of_session(db(), token)
    return ConsoleAgent.of(agent, token) if agent is not None else None


@login_manager.unauthorized_handler
def unauthorized() -> Any:
    """Pages send a signed-out agent to the sign-in page; the page scripts' requests and the rest get 401."""
    if request.method == "GET" and not request.headers.get("X-Requested-With") and request.path != "/events":
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
    return Response(_("Sign in first."), status=401, mimetype="text/plain")


class LoginForm(FlaskForm):
    email = EmailField("email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("password", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class PasswordForm(FlaskForm):
    current = PasswordField("current", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("new", validators=[DataRequired(), Length(min=12, max=200)])
    confirm = PasswordField("confirm", validators=[DataRequired(), EqualTo("new")])


def client_address() -> str | None:
    """The client's address (behind trusted proxies, ProxyFix has set it from X-Forwarded-For)."""
    return request.remote_addr


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc \
            and "\\" not in target:
        return target
    return url_for("queues.worklist")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.args.get("lang") in SUPPORTED_LANGUAGES:
        session["lang"] = request.args["lang"]
    if current_user.is_authenticated:
        return redirect(url_for("queues.worklist"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        return render_template("login.html", form=form)
    if not form.validate_on_submit():
        return render_template("login.html", form=form, error=_("Enter your email and password.")), 400
    email, address = form.email.data or "", client_address()
    lock = locked_for(db(), email, address)
    if lock is not None:
        record_failure(db(), email, address)
        db().commit()
        minutes = max(1, round(lock.total_seconds() / 60))
        logger.warning("sign-in refused: locked (account or address %s)", address)
        return render_template("login.html", form=form, error=_(
            "Too many failed sign-ins: try again in %(minutes)d minute(s).", minutes=minutes)), 429
    agent = agent_by_email(db(), email)
    if agent is None:
        spend_equal_time()
    if agent is None or not check_password(agent, form.password.data or ""):
        record_failure(db(), email, address)
        db().commit()
        logger.info("sign-in failed from %s", address)
        return render_template("login.html", form=form, error=_("Wrong email or password.")), 401
    record_success(db(), email)
    session.clear()  # nothing of the signed-out session survives: a new session, a new CSRF token
    opened = open_session(db(), agent, address, request.headers.get("User-Agent"))
    session.permanent = True
    login_user(ConsoleAgent.of(agent, opened.token))
    logger.info("agent %s signed in", agent.id)
    return redirect(safe_next(form.next.data))


@blueprint.post("/logout")
@login_required
def logout() -> Any:
    end_session(db(), current_user.token)
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@blueprint.route("/password", methods=["GET", "POST"])
@login_required
def password() -> Any:
    form = PasswordForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("password.html", form=form,
                                   error=_("The new password needs at least 12 characters, typed twice the same.")), 400
        agent = db().get(Agent, current_user.id)
        try:
            change_password(db(), agent, form.current.data or "", form.new.data or "")
        except AgentError:
            return render_template("password.html", form=form,
                                   error=_("The current password is not right, or the new one is the same.")), 400
        end_all_sessions(db(), current_user.id, keep=current_user.token)
        flash(_("Your password is changed; your other sessions are signed out."), "info")
        return redirect(url_for("queues.worklist"))
    return render_template("password.html", form=form)


@blueprint.post("/language")
def language() -> Any:
    """Switch the console's language (remembered for a signed-in agent)."""
    chosen = request.form.get("language", "")
    if chosen not in SUPPORTED_LANGUAGES:
        abort(400)
    session["lang"] = chosen
    if current_user.is_authenticated:
        agent = db().get(Agent, current_user.id)
        if agent is not None:
            agent.ui_language = chosen
    return redirect(safe_next(request.form.get("next")))
