"""The Flask extensions of the console, created here and bound to an application by ``create_app``."""

from __future__ import annotations

from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()  # every POST (forms and fetch alike) carries the session's token
babel = Babel()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.session_protection = "basic"  # the session itself is checked server-side (core.signin)
