"""Billing agents: their accounts and passwords, and the demo agents ``make run`` creates on an empty store.

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher``, its recommended parameters) and rehashed
when those parameters change; a generated password is 16 characters from ``secrets``. Nothing here logs or
returns a password except the one call that generates it, once.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db.models import AGENT_ROLES, TEAMS, Agent, normalize_email, utcnow
from core.errors import PermanentError
from core.files import create_atomic
from core.language import SUPPORTED_LANGUAGES

_HASHER = PasswordHasher()
PASSWORD_ALPHABET = string.ascii_letters + string.digits
MIN_PASSWORD_LENGTH = 12
DEMO_AGENTS_FILE = "demo_agents.json"


class AgentError(PermanentError):
    """Raised when an agent cannot be created or changed as asked; the message says what is wrong."""


@dataclass(frozen=True)
class AgentView:
    """What the console knows of a signed-in agent: who, which teams' work they see, in which language."""

    id: int
    email: str
    name: str
    teams: tuple[str, ...]
    languages: tuple[str, ...]
    role: str
    ui_language: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def visible_teams(self) -> tuple[str, ...]:
        """Supervisors see every team's work; agents their own teams'."""
        return TEAMS if self.is_supervisor else self.teams

    def sees(self, team: str | None) -> bool:
        return team in self.visible_teams


def view_of(agent: Any) -> AgentView:
    """The ``AgentView`` of an ``Agent`` row."""
    return AgentView(id=int(agent.id), email=str(agent.email), name=str(agent.name),
                     teams=split_list(agent.teams), languages=split_list(agent.languages), role=str(agent.role),
                     ui_language=str(agent.ui_language))


def split_list(value: str | None) -> tuple[str, ...]:
    """``"CA,US"`` → ``("CA", "US")``."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def generate_password() -> str:
    """A new random password (16 letters and digits: about 95 bits)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(agent: Any, password: str) -> bool:
    """True when ``password`` is the agent's; rehashes it in place when the hashing parameters changed."""
    try:
        _HASHER.verify(str(agent.password_hash), password)
    except (VerificationError, InvalidHashError):
        return False
    if _HASHER.check_needs_rehash(str(agent.password_hash)):
        agent.password_hash = hash_password(password)
    return True


def spend_equal_time() -> None:
    """Hash something, as checking a password would: an unknown email takes as long to refuse as a known one."""
    _HASHER.hash("not-a-password")


def _clean_teams(teams: str) -> str:
    chosen = [team.upper() for team in split_list(teams)]
    if not chosen or any(team not in TEAMS for team in chosen):
        raise AgentError(f"TEAM={teams!r}: one or more of {', '.join(TEAMS)} (for example TEAM=CA or TEAM=CA,US)")
    return ",".join(dict.fromkeys(chosen))


def _clean_languages(languages: str) -> str:
    chosen = [language.lower() for language in split_list(languages)]
    if not chosen or any(language not in SUPPORTED_LANGUAGES for language in chosen):
        raise AgentError(f"LANGUAGES={languages!r}: one or more of {', '.join(SUPPORTED_LANGUAGES)}")
    return ",".join(dict.fromkeys(chosen))


def create_agent(session: Session, email: str, name: str, teams: str, role: str = "agent",
                 languages: str = "en,fr", ui_language: str | None = None, password: str | None = None) -> tuple[Any, str]:
    """Add an agent (in the caller's transaction); returns the row and its password (generated unless given)."""
    try:
        address = normalize_email(validate_email(email, check_deliverability=False).normalized)
    except EmailNotValidError as error:
        raise AgentError(f"EMAIL={email!r} is not an email address: {error}") from error
    if not name.strip() or len(name) > 200 or any(ch in name for ch in "\r\n\x00"):
        raise AgentError("NAME: a name of 1 to 200 characters, on one line")
    if role not in AGENT_ROLES:
        raise AgentError(f"ROLE={role!r}: one of {', '.join(AGENT_ROLES)}")
    clean_languages = _clean_languages(languages)
    ui = ui_language or split_list(clean_languages)[0]
    if ui not in SUPPORTED_LANGUAGES:
        raise AgentError(f"the interface language {ui!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}")
    if session.execute(select(Agent.id).where(Agent.email == address)).first() is not None:
        raise AgentError(f"an agent with the email {address} exists already")
    secret = password or generate_password()
    if len(secret) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    agent = Agent(email=address, name=name.strip(), teams=_clean_teams(teams), languages=clean_languages, role=role,
                  ui_language=ui, password_hash=hash_password(secret), active=True)
    session.add(agent)
    session.flush()
    return agent, secret


def change_password(session: Session, agent: Any, current: str, new: str) -> None:
    """Set a new password after checking the current one (the caller ends the agent's other sessions)."""
    if not check_password(agent, current):
        raise AgentError("the current password is not right")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise AgentError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if new == current:
        raise AgentError("the new password is the current one")
    agent.password_hash = hash_password(new)
    agent.password_changed_at = utcnow()


def agent_by_email(session: Session, email: str) -> Any:
    """The active agent with this email (any case), or None."""
    return session.execute(select(Agent).where(Agent.email == normalize_email(email), Agent.active.is_(True))
                           ).scalars().first()


# The demo team: one Canadian agent per language, a US agent, a supervisor of both teams.
DEMO_AGENTS = (
    {"email": "sophie.lavoie@net2phone.ca", "name": "Sophie Lavoie", "team": "CA", "role": "agent", "language": "fr"},
    {"email": "liam.wilson@net2phone.ca", "name": "Liam Wilson", "team": "CA", "role": "agent", "language": "en"},
    {"email": "jordan.reyes@net2phone.com", "name": "Jordan Reyes", "team": "US", "role": "agent", "language": "en"},
    {"email": "nadia.cloutier@net2phone.ca", "name": "Nadia Cloutier", "team": "CA,US", "role": "supervisor",
     "language": "fr"},
)


def seed_demo_agents(session: Session, var_dir: Path) -> int:
    """On a store without agents, create the demo agents with generated passwords, kept in
    ``var/demo_agents.json`` (mode 0600, never in the repository); returns how many were created."""
    if session.execute(select(func.count()).select_from(Agent)).scalar_one():
        return 0
    records = []
    for spec in DEMO_AGENTS:
        languages = "en,fr" if spec["team"] != "US" else "en"
        _, password = create_agent(session, spec["email"], spec["name"], spec["team"], spec["role"], languages,
                                   ui_language=spec["language"])
        records.append({**spec, "password": password})
    path = var_dir / DEMO_AGENTS_FILE
    path.unlink(missing_ok=True)  # left by a store that was since deleted: these passwords replace it
    create_atomic(path, json.dumps(records, ensure_ascii=False, indent=1), mode=0o600)
    return len(records)


def demo_agents(var_dir: Path) -> list[dict[str, str]]:
    """The demo agents with their passwords (``make -s demo-agents``); empty before the first ``make run``."""
    path = var_dir / DEMO_AGENTS_FILE
    if not path.exists():
        return []
    records: list[dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return records
