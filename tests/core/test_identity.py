"""Identity tokens: only a valid, unexpired token for an active user of the named account proves an identity."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.db.models import PortalUser
from core.identity import (
    ExpiredToken,
    InvalidToken,
    MissingToken,
    UnknownUser,
    mint_token,
    mint_token_for,
    verify_token,
)
from tests.conftest import TEST_SECRET

HOUR = timedelta(hours=1)
MARIE = ("marie.tremblay@boulangerietremblay.ca", "CA-100231")


def test_a_valid_token_proves_the_user_and_account(demo_sessions: sessionmaker) -> None:
    token = mint_token(TEST_SECRET, *MARIE, ttl=HOUR)
    with demo_sessions() as session:
        identity = verify_token(token, TEST_SECRET, session)
    assert (identity.email, identity.account_number, identity.role, identity.user_language) == (
        MARIE[0], MARIE[1], "office_manager", "fr"
    )
    assert identity.manages_users


@pytest.mark.parametrize(
    ("make_token", "error"),
    [
        (lambda: None, MissingToken),
        (lambda: "", MissingToken),
        (lambda: "not-a-jwt", InvalidToken),
        (lambda: mint_token("another-secret-of-sufficient-length-000000", *MARIE, ttl=HOUR), InvalidToken),
        (lambda: mint_token(TEST_SECRET, *MARIE, ttl=HOUR)[:-3] + "abc", InvalidToken),
        (lambda: mint_token(TEST_SECRET, *MARIE, ttl=HOUR, now=datetime.now(timezone.utc) - 2 * HOUR), ExpiredToken),
        (lambda: mint_token(TEST_SECRET, "nobody@nowhere.ca", "CA-100231", ttl=HOUR), UnknownUser),
        # Marie is real, but not a user of Maple Leaf Dental's account.
        (lambda: mint_token(TEST_SECRET, MARIE[0], "CA-100487", ttl=HOUR), UnknownUser),
        (lambda: jwt.encode({"sub": MARIE[0], "acct": MARIE[1]}, TEST_SECRET, algorithm="HS256"), InvalidToken),
        (lambda: jwt.encode({"iss": "x", "aud": "billing-assistant", "sub": MARIE[0], "acct": MARIE[1],
                             "iat": 0, "exp": 4102444800}, TEST_SECRET, algorithm="HS256"), InvalidToken),
    ],
)
def test_anything_else_proves_nothing(demo_sessions: sessionmaker, make_token, error: type) -> None:  # type: ignore[no-untyped-def]
    with demo_sessions() as session, pytest.raises(error) as raised:
        verify_token(make_token(), TEST_SECRET, session)
    assert TEST_SECRET not in str(raised.value)


def test_a_deactivated_user_proves_nothing(demo_sessions: sessionmaker) -> None:
    token = mint_token(TEST_SECRET, "luc.bergeron@boulangerietremblay.ca", "CA-100231", ttl=HOUR)
    with demo_sessions() as session:
        session.execute(sa.update(PortalUser).where(PortalUser.email == "luc.bergeron@boulangerietremblay.ca")
                        .values(active=False))
        session.flush()
        with pytest.raises(UnknownUser):
            verify_token(token, TEST_SECRET, session)
        session.rollback()


def test_tokens_for_demo_users_name_their_account(demo_sessions: sessionmaker) -> None:
    with demo_sessions() as session:
        token = mint_token_for(session, TEST_SECRET, "Priya.Shah@mapleleafdental.ca", HOUR)
        assert verify_token(token, TEST_SECRET, session).account_number == "CA-100487"
        with pytest.raises(UnknownUser):
            mint_token_for(session, TEST_SECRET, "nobody@nowhere.ca", HOUR)
