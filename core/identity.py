"""Verified identity: the Billing Portal's signed, expiring token names the account and the portal user.

The portal signs a JWT (HS256, PyJWT) with a shared secret and sends it with each chat message, in the message
metadata (``{"metadata": {"auth_token": "..."}}``). ``verify_token`` checks the signature, the expiry, the
issuer and audience, and that the named user exists, is active and belongs to the named account: only then does
the assistant show account data. Every failure is a distinct ``IdentityError``; none of them carries the token.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, PortalUser
from core.errors import PermanentError

ISSUER = "net2phone-billing-portal"
AUDIENCE = "billing-assistant"
ALGORITHM = "HS256"
TOKEN_METADATA_KEY = "auth_token"
MANAGING_ROLES = frozenset({"office_manager", "admin"})


class IdentityError(PermanentError):
    """Raised when a message's identity cannot be verified; the customer is then treated as anonymous."""

    reason = "invalid"


class MissingToken(IdentityError):
    """Raised when a message carries no token (an anonymous visitor)."""

    reason = "missing"


class InvalidToken(IdentityError):
    """Raised when a token is malformed, signed with another key, or meant for another issuer or audience."""

    reason = "invalid"


class ExpiredToken(IdentityError):
    """Raised when a token's validity has ended."""

    reason = "expired"


class UnknownUser(IdentityError):
    """Raised when a correctly signed token names a user that does not exist, is inactive, or belongs to
    another account than the one named."""

    reason = "unknown_user"


@dataclass(frozen=True)
class Identity:
    """A verified portal user and their account."""

    user_id: int
    email: str
    name: str
    role: str
    user_language: str
    account_id: int
    account_number: str
    account_name: str
    account_language: str

    @property
    def manages_users(self) -> bool:
        """Office Managers and admins may ask for user changes; regular users may not."""
        return self.role in MANAGING_ROLES


def mint_token(secret: str, email: str, account_number: str, ttl: timedelta, now: datetime | None = None) -> str:
    """A token for one portal user of one account, valid for ``ttl`` (what the portal does at login)."""
    issued = now or datetime.now(timezone.utc)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": email.lower(),
        "acct": account_number,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return str(jwt.encode(claims, secret, algorithm=ALGORITHM))


def verify_token(token: object, secret: str, session: Session) -> Identity:
    """The identity a token proves. Raises an ``IdentityError`` subclass when it proves none."""
    if not isinstance(token, str) or not token.strip():
        raise MissingToken("no identity token")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "acct", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise ExpiredToken("the identity token has expired") from error
    except jwt.PyJWTError as error:
        raise InvalidToken(f"the identity token is not valid ({type(error).__name__})") from error
    row = session.execute(
        select(PortalUser, Account)
        .join(Account, Account.id == PortalUser.account_id)
        .where(PortalUser.email == str(claims["sub"]).lower(), PortalUser.active.is_(True))
    ).first()
    if row is None or row.Account.number != claims["acct"]:
        raise UnknownUser("the identity token names no active user of that account")
    user, account = row.PortalUser, row.Account
    return Identity(
        user_id=user.id, email=user.email, name=user.name, role=user.role, user_language=user.language,
        account_id=account.id, account_number=account.number, account_name=account.name,
        account_language=account.language,
    )


def mint_token_for(session: Session, secret: str, email: str, ttl: timedelta) -> str:
    """A fresh token for the active portal user ``email`` (what ``make -s token USER=...`` prints)."""
    row = session.execute(
        select(PortalUser, Account)
        .join(Account, Account.id == PortalUser.account_id)
        .where(PortalUser.email == email.lower(), PortalUser.active.is_(True))
    ).first()
    if row is None:
        raise UnknownUser(f"no active portal user {email!r}")
    return mint_token(secret, str(row.PortalUser.email), str(row.Account.number), ttl)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.identity token EMAIL``: print a fresh identity token for a portal user."""
    from core.db.engine import make_engine, make_session_factory
    from core.settings import Settings

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "token" or "@" not in args[1]:
        print("usage: make -s token USER=<email of a portal user>  (list them: make -s demo-users)", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            token = mint_token_for(session, settings.signing_secret(), args[1],
                                   timedelta(minutes=settings.token_ttl_minutes))
    except UnknownUser as error:
        print(f"{error}; the demo users are listed by: make -s demo-users", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
