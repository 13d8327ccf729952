"""Requests that a billing agent carries out for a verified customer, each with a reference number.

User changes (add a portal user, remove one, change a user's role) may be asked only by the account's Office
Managers and admins; the others are told who can. French is requested at account level (invoices and billing
notifications for everyone, so an Office Manager or admin must ask) or at user level (one person's portal
interface: the person themselves, or a manager for someone else).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.accounts import portal_user_by_email, user_managers
from core.db.models import AccountRequest
from core.errors import PermanentError
from core.identity import Identity
from core.references import REQUEST_PREFIX, commit_with_reference

ROLES: tuple[str, ...] = ("office_manager", "admin", "regular")


class UserChange(str, Enum):
    """What a user-change request asks for."""

    ADD = "add_user"
    REMOVE = "remove_user"
    CHANGE_ROLE = "change_role"


class LanguageLevel(str, Enum):
    """Where French is asked for."""

    ACCOUNT = "account"
    USER = "user"


class RequestRefused(PermanentError):
    """Raised when a request cannot be accepted as asked; ``code`` names the reason for the reply."""

    code = "refused"


class NotAllowed(RequestRefused):
    """Raised when the requester's role may not ask for this; ``who_can`` lists who may (name, email)."""

    code = "not_allowed"

    def __init__(self, message: str, who_can: Sequence[tuple[str, str]]) -> None:
        super().__init__(message)
        self.who_can = list(who_can)


class UnknownTarget(RequestRefused):
    """Raised when the user to remove or change is not a user of the requester's account."""

    code = "unknown_target"


class AlreadyAUser(RequestRefused):
    """Raised when the user to add already has a login on the account."""

    code = "already_a_user"


def managers_of(session: Session, identity: Identity) -> list[tuple[str, str]]:
    """(name, email) of who may ask for user changes on the account."""
    return [(str(user.name), str(user.email)) for user in user_managers(session, identity.account_id)]


def check_user_change(session: Session, identity: Identity, change: UserChange | None, email: str | None) -> None:
    """Raise ``RequestRefused`` if ``identity`` may not ask for ``change`` of ``email`` (None: not known yet)."""
    if not identity.manages_users:
        raise NotAllowed("only Office Managers and admins may ask for user changes", managers_of(session, identity))
    if change is None or email is None:
        return
    existing = portal_user_by_email(session, identity.account_id, email)
    if change is UserChange.ADD and existing is not None:
        raise AlreadyAUser(f"{email} already has a Billing Portal login on this account")
    if change in (UserChange.REMOVE, UserChange.CHANGE_ROLE) and existing is None:
        raise UnknownTarget(f"{email} is not a user of this account")


def check_french_request(session: Session, identity: Identity, level: LanguageLevel | None, email: str | None) -> None:
    """Raise ``RequestRefused`` if ``identity`` may not ask for French at ``level`` (for ``email``)."""
    if level is LanguageLevel.ACCOUNT and not identity.manages_users:
        raise NotAllowed("only Office Managers and admins may change the account's language", managers_of(session, identity))
    if level is LanguageLevel.USER and email is not None:
        if email.lower() != identity.email.lower() and not identity.manages_users:
            raise NotAllowed("only Office Managers and admins may change another user's language", managers_of(session, identity))
        if portal_user_by_email(session, identity.account_id, email) is None:
            raise UnknownTarget(f"{email} is not a user of this account")


def _store(
    factory: sessionmaker[Session], identity: Identity, kind: str, details: dict[str, Any], conversation_id: str | None
) -> AccountRequest:
    def build(reference: str) -> AccountRequest:
        request: AccountRequest = AccountRequest(
            reference=reference, account_id=identity.account_id, requested_by=identity.user_id, kind=kind,
            details=details, status="open", channel="chat", conversation_id=conversation_id,
        )
        return request

    return commit_with_reference(factory, REQUEST_PREFIX, build)


def request_user_change(
    factory: sessionmaker[Session], identity: Identity, change: UserChange, email: str, role: str | None,
    conversation_id: str | None = None,
) -> AccountRequest:
    """Check and store a user-change request; raises ``RequestRefused`` when it cannot be accepted."""
    if role is not None and role not in ROLES:
        raise RequestRefused(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    with factory() as session:
        check_user_change(session, identity, change, email)
    details = {"email": email.lower(), "role": role, "requested_by": identity.email}
    return _store(factory, identity, change.value, details, conversation_id)


def request_french(
    factory: sessionmaker[Session], identity: Identity, level: LanguageLevel, email: str | None,
    conversation_id: str | None = None,
) -> AccountRequest:
    """Check and store a request for French; ``email`` is the user concerned at user level (default: the
    requester). Raises ``RequestRefused`` when it cannot be accepted."""
    target = (email or identity.email).lower() if level is LanguageLevel.USER else None
    with factory() as session:
        check_french_request(session, identity, level, target)
    details = {"level": level.value, "email": target, "language": "fr", "requested_by": identity.email}
    return _store(factory, identity, f"french_{level.value}", details, conversation_id)
