"""The console as a WSGI application, for gunicorn (``console.wsgi:app``): configured from the environment."""

from __future__ import annotations

import logging

from console import create_app
from core.redaction import install_log_redaction

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
install_log_redaction()
app = create_app()
