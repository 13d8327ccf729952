"""Headless Chromium for the browser tests: Debian's package (installed by the tests when missing, as Dovecot is),
driven by Playwright with ``executable_path`` (never ``playwright install``: nothing is downloaded at run time).

Screenshots go to ``var/test-artifacts/`` (one per page and language), for people to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from core.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts"
# Flags for root in a container with a closed network: no sandbox (root), no GPU, none of Chromium's own calls
# home (refused here, many at a time), a fresh profile each launch (Playwright's).
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
               "--disable-default-apps", "--disable-extensions"]


class BrowserUnavailable(Exception):
    """Raised when Chromium cannot be installed or started here."""


def ensure_chromium() -> str:
    """The path of Debian's Chromium, installed from Debian's packages if missing (root, Debian mirror)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "fonts-dejavu-core"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise BrowserUnavailable(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    if not shutil.which("chromium"):
        raise BrowserUnavailable("chromium is still missing after apt-get install")
    return CHROMIUM


def screenshot_path(name: str) -> Path:
    """Where the screenshot ``name`` (e.g. "console-queues-fr") goes."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"
