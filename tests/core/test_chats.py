"""Live chat in the core, on a real store (SQLite and PostgreSQL): who owns a conversation and what each step
does (handoff, claim, an agent's message, hand back, close, rating, a chat nobody claims, the email ticket),
what agents of another team may not do, card numbers never stored; and business hours."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import chats
from core.agents import AgentView, create_agent, view_of
from core.db.engine import unit_of_work
from core.db.models import ActivityEvent, AgentSession, AuditEvent, ChatMessage, Ticket, TicketMessage
from core.errors import ConfigurationError
from core.hours import load_business_hours
from core.tickets import NotVisible
from core.identity import mint_token_for, verify_token
from tests.conftest import TEST_SECRET

CARD = "4111 1111 1111 1111"
DEMO_USER = "marie.tremblay@boulangerietremblay.ca"


def agent(factory: sessionmaker[Session], team: str = "CA", signed_in: bool = True) -> AgentView:
    with unit_of_work(factory) as session:
        row, _ = create_agent(session, f"a-{uuid.uuid4().hex[:8]}@net2phone.ca", f"Agent {uuid.uuid4().hex[:4]}",
                              team, password="correct horse battery staple")
        if signed_in:
            now = datetime.now(timezone.utc)
            session.add(AgentSession(id=uuid.uuid4().hex, agent_id=row.id, expires_at=now + timedelta(hours=1)))
        session.flush()
        return view_of(row)


def conversation_with(factory: sessionmaker[Session], *texts: str, verified: bool = False,
                      language: str = "fr") -> tuple[int, str]:
    with unit_of_work(factory) as session:
        identity = token = None
        if verified:
            token = mint_token_for(session, TEST_SECRET, DEMO_USER, timedelta(minutes=5))
            identity = verify_token(token, TEST_SECRET, session)
        conversation, key = chats.open_conversation(session, language, identity, token)
        for number, text in enumerate(texts):
            chats.add_message(session, conversation, "customer", text, client_id=f"c{number}")
        return int(conversation.id), key


def handed_off(factory: sessionmaker[Session], *texts: str, verified: bool = False) -> tuple[int, int]:
    conversation_id, _ = conversation_with(factory, *texts, verified=verified)
    with unit_of_work(factory) as session:
        ticket = chats.hand_off(session, session.get(chats.Conversation, conversation_id), "needs_person")
        return conversation_id, int(ticket.id)


@pytest.fixture
def factory(demo_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return demo_sessions


def test_a_conversation_is_found_by_its_key_only(factory: sessionmaker[Session]) -> None:
    conversation_id, key = conversation_with(factory, "bonjour")
    with factory() as session:
        assert chats.by_key(session, key).id == conversation_id
        assert chats.by_key(session, key + "x") is None and chats.by_key(session, "") is None
        stored = session.get(chats.Conversation, conversation_id)
        assert key not in (stored.key_hash, stored.sender_id), "the key is kept hashed, never as given"


def test_card_numbers_are_never_stored_and_a_retried_send_is_stored_once(factory: sessionmaker[Session]) -> None:
    conversation_id, _ = conversation_with(factory, f"ma carte est {CARD} exp 12/28")
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        again = chats.add_message(session, conversation, "customer", f"ma carte est {CARD} exp 12/28", client_id="c0")
        texts = [line.text for line in chats.lines(session, conversation_id)]
    assert len(texts) == 1 and "4111" not in texts[0] and "1111" in texts[0]  # (the last four digits stay)
    assert again.text == texts[0]


def test_a_handoff_puts_a_chat_ticket_in_the_teams_queue_once(factory: sessionmaker[Session]) -> None:
    conversation_id, ticket_id = handed_off(factory, "je conteste un montant sur ma facture")
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        ticket = session.get(Ticket, ticket_id)
        assert (conversation.owner, conversation.reason, ticket.channel, ticket.team, ticket.status, ticket.language) \
            == ("queue", "needs_person", "chat", "CA", "new", "fr")
        assert "je conteste un montant" in ticket.subject and ticket.account_id is None  # anonymous
        assert chats.hand_off(session, conversation, "customer_request").id == ticket_id  # already handed off
        kinds = set(session.execute(select(ActivityEvent.kind).where(ActivityEvent.ticket_id == ticket_id)).scalars())
        assert {"ticket.created", "chat.state"} <= kinds
        assert session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == ticket_id)).scalars().all() \
            == ["chat_handoff"]


def test_a_verified_customers_chat_carries_their_account(factory: sessionmaker[Session]) -> None:
    _, ticket_id = handed_off(factory, "I want a refund for a double charge", verified=True)
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket.account_id is not None and ticket.customer_email == DEMO_USER


def test_claim_message_hand_back_and_close_each_leave_their_trace(factory: sessionmaker[Session]) -> None:
    sophie, luc = agent(factory), agent(factory)
    conversation_id, ticket_id = handed_off(factory, "je conteste un montant sur ma facture")
    with unit_of_work(factory) as session:
        chats.claim(session, sophie, ticket_id)
        chats.say(session, sophie, ticket_id, "Bonjour, je regarde votre facture.")
    with unit_of_work(factory) as session:
        chats.say(session, luc, ticket_id, f"Ne m'envoyez pas {CARD}")  # writing takes the chat over
        conversation = session.get(chats.Conversation, conversation_id)
        assert (conversation.owner, conversation.agent_id) == ("agent", luc.id)
    with unit_of_work(factory) as session:
        chats.hand_back(session, luc, ticket_id)
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        assert conversation.owner == "bot" and session.get(Ticket, ticket_id).status == "solved"
        lines = chats.lines(session, conversation_id)
        assert [line.sender for line in lines] == ["customer", "system", "agent", "system", "agent", "system"]
        assert lines[1].text == f"{sophie.name} (agent de facturation) s'est joint à la conversation."
        assert lines[4].agent == luc.name and "4111" not in lines[4].text
        with pytest.raises(chats.TicketError):
            chats.claim(session, sophie, ticket_id)  # the bot has it again
        actions = session.execute(select(AuditEvent.action).where(AuditEvent.ticket_id == ticket_id)
                                  .order_by(AuditEvent.id)).scalars().all()
    assert actions == ["chat_handoff", "chat_claim", "chat_message", "chat_claim", "chat_message", "chat_hand_back"]


def test_an_ended_chat_is_rated_once(factory: sessionmaker[Session]) -> None:
    sophie = agent(factory)
    conversation_id, ticket_id = handed_off(factory, "annulez mon service")
    with unit_of_work(factory) as session:
        with pytest.raises(chats.ChatError):
            chats.rate(session, session.get(chats.Conversation, conversation_id), 5, None)
        chats.close(session, sophie, ticket_id)
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        for stars in (0, 6):
            with pytest.raises(chats.ChatError):
                chats.rate(session, conversation, stars, None)
        chats.rate(session, conversation, 4, "rapide")
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        assert (conversation.owner, conversation.rating, conversation.rating_comment) == ("closed", 4, "rapide")
        with pytest.raises(chats.ChatError):
            chats.rate(session, conversation, 1, None)


def test_another_teams_agent_cannot_touch_the_chat(factory: sessionmaker[Session]) -> None:
    us_agent = agent(factory, "US")
    _, ticket_id = handed_off(factory, "je conteste un montant")
    with unit_of_work(factory) as session:
        for act in (chats.claim, chats.hand_back, chats.close):
            with pytest.raises(NotVisible):
                act(session, us_agent, ticket_id)
        with pytest.raises(NotVisible):
            chats.say(session, us_agent, ticket_id, "hello")


def test_a_chat_nobody_claims_goes_back_to_the_bot(factory: sessionmaker[Session]) -> None:
    conversation_id, ticket_id = handed_off(factory, "je veux un remboursement")
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    with unit_of_work(factory) as session:
        assert conversation_id in [c.id for c in chats.unclaimed(session, timedelta(minutes=5), later)]
        assert conversation_id not in [c.id for c in chats.unclaimed(session, timedelta(minutes=5))]
        assert chats.give_back_unclaimed(session, session.get(chats.Conversation, conversation_id))
    with unit_of_work(factory) as session:
        assert not chats.give_back_unclaimed(session, session.get(chats.Conversation, conversation_id))
        assert session.get(chats.Conversation, conversation_id).owner == "bot"
        assert session.get(Ticket, ticket_id).status == "closed"


def test_the_email_ticket_holds_the_transcript_in_the_customers_language(factory: sessionmaker[Session]) -> None:
    conversation_id, _ = conversation_with(factory, "je conteste un montant", f"carte {CARD}")
    with unit_of_work(factory) as session:
        conversation = session.get(chats.Conversation, conversation_id)
        chats.add_message(session, conversation, "bot", "Voulez-vous qu'un agent vous réponde par courriel?")
        ticket = chats.email_ticket(session, email="marie@bureau.qc.ca", language="fr", team="CA",
                                    text=chats.transcript(session, conversation), reason="needs_person")
        ticket_id = int(ticket.id)
    with factory() as session:
        ticket = session.get(Ticket, ticket_id)
        [message] = session.execute(select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)).scalars()
        assert (ticket.channel, ticket.language, ticket.customer_email, ticket.status) == \
            ("email", "fr", "marie@bureau.qc.ca", "new")
        assert message.text.splitlines()[0] == "Client: je conteste un montant"
        assert "Assistant: Voulez-vous" in message.text and "4111" not in message.text


def test_only_live_sessions_of_the_team_count_as_signed_in(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        before_ca, before_us = chats.agents_signed_in(session, "CA"), chats.agents_signed_in(session, "US")
    agent(factory, "CA")
    agent(factory, "CA", signed_in=False)
    with factory() as session:
        assert chats.agents_signed_in(session, "CA") == before_ca + 1
        assert chats.agents_signed_in(session, "US") == before_us
        assert chats.agents_signed_in(session, "CA", datetime.now(timezone.utc) + timedelta(hours=3)) == 0


def test_business_hours(tmp_path: Path) -> None:
    hours = load_business_hours(Path(chats.__file__).parent / "data" / "business_hours.yml")
    toronto = hours.zone
    assert hours.is_open(datetime(2026, 12, 3, 8, 0, tzinfo=toronto))  # a Thursday
    assert not hours.is_open(datetime(2026, 12, 3, 20, 0, tzinfo=toronto))
    assert not hours.is_open(datetime(2026, 12, 5, 12, 0, tzinfo=toronto))  # Saturday
    assert not hours.is_open(datetime(2026, 12, 25, 12, 0, tzinfo=toronto))  # Christmas, a Friday
    assert hours.next_opening(datetime(2026, 12, 24, 21, 0, tzinfo=toronto)) == \
        datetime(2026, 12, 28, 8, 0, tzinfo=toronto)
    assert hours.is_open(datetime(2026, 12, 3, 13, 30, tzinfo=timezone.utc))  # 8:30 in Toronto
    broken = tmp_path / "hours.yml"
    for text in ("hours: {funday: ['08:00', '20:00']}", "hours: {monday: ['20:00', '08:00']}",
                 "timezone: Mars/Olympus", "holidays: [someday]", "hours: {monday: ['8h', '20h']}"):
        broken.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigurationError):
            load_business_hours(broken)


def test_messages_of_one_conversation_never_show_in_another(factory: sessionmaker[Session]) -> None:
    first, _ = conversation_with(factory, "premier")
    second, _ = conversation_with(factory, "second")
    with factory() as session:
        assert [line.text for line in chats.lines(session, first)] == ["premier"]
        assert [line.text for line in chats.lines(session, second)] == ["second"]
        assert session.execute(select(ChatMessage.conversation_id).where(ChatMessage.text == "premier")
                               .where(ChatMessage.conversation_id == second)).first() is None
