"""Requests for agents: who may ask for what, and every accepted request stored with a reference."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.db.models import REFERENCE_ALPHABET, AccountRequest
from core.identity import Identity, mint_token, verify_token
from core.requests import (
    AlreadyAUser,
    LanguageLevel,
    NotAllowed,
    UnknownTarget,
    UserChange,
    request_french,
    request_user_change,
)
from tests.conftest import TEST_SECRET


def identity(factory: sessionmaker, email: str, account: str) -> Identity:
    with factory() as session:
        return verify_token(mint_token(TEST_SECRET, email, account, timedelta(hours=1)), TEST_SECRET, session)


PRIYA = ("priya.shah@mapleleafdental.ca", "CA-100487")  # Office Manager
TOM = ("tom.wilson@mapleleafdental.ca", "CA-100487")  # admin
JENNY = ("jenny.park@mapleleafdental.ca", "CA-100487")  # regular user


@pytest.mark.parametrize("who", [PRIYA, TOM])
def test_managers_may_ask_for_user_changes(demo_sessions: sessionmaker, who: tuple[str, str]) -> None:
    asker = identity(demo_sessions, *who)
    request = request_user_change(demo_sessions, asker, UserChange.ADD, "New.Person@MapleLeafDental.ca", "regular", "c1")
    assert re.fullmatch(f"RQ-[{REFERENCE_ALPHABET}]{{6}}", request.reference)
    with demo_sessions() as session:
        stored = session.execute(sa.select(AccountRequest).where(AccountRequest.reference == request.reference)).scalar_one()
    assert (stored.kind, stored.status, stored.account_id, stored.requested_by) == (
        "add_user", "open", asker.account_id, asker.user_id
    )
    assert stored.details == {"email": "new.person@mapleleafdental.ca", "role": "regular", "requested_by": who[0]}


def test_a_regular_user_is_told_who_can(demo_sessions: sessionmaker) -> None:
    with pytest.raises(NotAllowed) as refused:
        request_user_change(demo_sessions, identity(demo_sessions, *JENNY), UserChange.ADD, "x@y.ca", "regular")
    assert refused.value.who_can == [("Priya Shah", PRIYA[0]), ("Tom Wilson", TOM[0])]


def test_targets_must_make_sense(demo_sessions: sessionmaker) -> None:
    priya = identity(demo_sessions, *PRIYA)
    with pytest.raises(AlreadyAUser):
        request_user_change(demo_sessions, priya, UserChange.ADD, JENNY[0], "regular")
    with pytest.raises(UnknownTarget):
        request_user_change(demo_sessions, priya, UserChange.REMOVE, "stranger@mapleleafdental.ca", None)
    # A user of another account is unknown here, never revealed.
    with pytest.raises(UnknownTarget):
        request_user_change(demo_sessions, priya, UserChange.CHANGE_ROLE, "marie.tremblay@boulangerietremblay.ca", "admin")


def test_french_at_account_level_needs_a_manager_and_at_user_level_the_user(demo_sessions: sessionmaker) -> None:
    jenny, priya = identity(demo_sessions, *JENNY), identity(demo_sessions, *PRIYA)
    with pytest.raises(NotAllowed):
        request_french(demo_sessions, jenny, LanguageLevel.ACCOUNT, None)
    with pytest.raises(NotAllowed):
        request_french(demo_sessions, jenny, LanguageLevel.USER, TOM[0])
    own = request_french(demo_sessions, jenny, LanguageLevel.USER, None)
    for_her = request_french(demo_sessions, priya, LanguageLevel.USER, JENNY[0])
    account = request_french(demo_sessions, priya, LanguageLevel.ACCOUNT, None)
    with demo_sessions() as session:
        details = {
            r.reference: (r.kind, r.details["email"])
            for r in session.execute(sa.select(AccountRequest)).scalars()
        }
    assert details[own.reference] == ("french_user", JENNY[0])
    assert details[for_her.reference] == ("french_user", JENNY[0])
    assert details[account.reference] == ("french_account", None)
