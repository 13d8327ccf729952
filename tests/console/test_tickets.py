"""Agents work tickets in the console: worklists with counts and search, a ticket with its thread, the account
and suggested answers in the customer's language, and every action with its audit entry."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from email import message_from_string, policy

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from core.db.models import Account, AuditEvent, InboundMail, OutboxMail, Ticket, TicketMessage
from tests.console.conftest import Agent, StaffAccount


def audit_actions(factory: sessionmaker[Session], ticket_id: int) -> list[str]:
    with factory() as session:
        return list(session.execute(sa.select(AuditEvent.action).where(AuditEvent.ticket_id == ticket_id)
                                    .order_by(AuditEvent.id)).scalars())


def test_the_worklist_shows_the_teams_tickets_most_urgent_first_with_counts_and_search(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    tag = uuid.uuid4().hex[:6]
    agent = signed_in(make_agent("CA"))
    normal = make_ticket(subject=f"Copie de facture {tag}", queue="invoices")
    urgent = make_ticket(subject=f"Paiement refusé {tag}", priority="urgent")
    make_ticket(team="US", subject=f"Sales tax {tag}", language="en")
    make_ticket(subject=f"Vieux dossier {tag}", status="closed")
    page = agent.get(f"/?q={tag}").text
    assert page.index(f"Paiement refusé {tag}") < page.index(f"Copie de facture {tag}")
    assert f"Sales tax {tag}" not in page and f"Vieux dossier {tag}" not in page
    assert f"Vieux dossier {tag}" in agent.get(f"/?q={tag}&status=closed").text
    assert f"Copie de facture {tag}" in agent.get(f"/?q={tag}&queue=invoices").text
    assert f"Paiement refusé {tag}" not in agent.get(f"/?q={tag}&queue=invoices").text
    with factory() as session:
        reference = session.get(Ticket, urgent).reference
        session.get(Ticket, normal).account_id = session.execute(
            sa.select(Account.id).where(Account.number == "CA-100231")).scalar_one()
        session.commit()
    assert f"Paiement refusé {tag}" in agent.get(f"/?q={reference.lower()}").text
    assert f"Copie de facture {tag}" in agent.get("/?q=CA-100231").text
    counts = agent.get("/rows").text
    assert 'id="fresh-rows"' in counts and "Unassigned" in counts
    assert agent.get("/?status=bogus&queue=<script>").status_code == 200  # nonsense is ignored, not trusted


def test_a_ticket_shows_its_thread_account_and_suggested_answers_in_the_customers_language(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    agent = signed_in(make_agent("CA"))
    with factory() as session:
        account = session.execute(sa.select(Account.id).where(Account.number == "CA-100902")).scalar_one()
    ticket = make_ticket(text="Bonjour, ma carte de crédit est refusée quand je l'ajoute au portail de facturation.",
                         account_id=account)
    page = agent.get(f"/tickets/{ticket}").text
    assert "Les Entreprises Gagnon" in page and "CA-100902" in page
    assert "Past due" in page or "Montant en souffrance" in page
    assert "Insert into the reply" in page
    assert "Pourquoi ma carte" in page or "carte" in page.split("Suggested answers")[1].lower()


def test_claim_assign_status_queue_priority_and_note_are_each_audited(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    first, second, american = make_agent("CA"), make_agent("CA"), make_agent("US")
    agent = signed_in(first)
    ticket = make_ticket()
    assert agent.post(f"/tickets/{ticket}/claim").status_code == 302
    assert agent.post(f"/tickets/{ticket}/assign", {"assignee": str(american.id)}).status_code == 400
    assert agent.post(f"/tickets/{ticket}/assign", {"assignee": str(second.id)}).status_code == 302
    for field, value in (("queue", "credits"), ("priority", "high"), ("status", "waiting")):
        assert agent.post(f"/tickets/{ticket}/set", {"field": field, "value": value}).status_code == 302
    assert agent.post(f"/tickets/{ticket}/set", {"field": "status", "value": "bogus"}).status_code == 400
    assert agent.post(f"/tickets/{ticket}/note", {"text": "Appeler la cliente demain."}).status_code == 302
    with factory() as session:
        row = session.get(Ticket, ticket)
        assert (row.assignee_id, row.queue, row.priority, row.priority_rank, row.status) == \
            (second.id, "credits", "high", 1, "waiting")
        note = session.execute(sa.select(TicketMessage).where(TicketMessage.ticket_id == ticket,
                                                              TicketMessage.kind == "note")).scalar_one()
        assert (note.direction, note.author_id) == ("internal", first.id)
        entry = session.execute(sa.select(AuditEvent).where(AuditEvent.ticket_id == ticket,
                                                            AuditEvent.action == "queue")).scalar_one()
        assert (entry.agent_id, entry.before, entry.after) == (first.id, {"queue": "payments"}, {"queue": "credits"})
    assert audit_actions(factory, ticket) == ["claim", "status", "assign", "queue", "priority", "status", "note"]
    assert "Appeler la cliente demain." in agent.get(f"/tickets/{ticket}").text


def test_a_reply_goes_to_the_outbox_in_the_customers_thread_signed_by_the_agent(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    account = make_agent("CA", name="Sophie Lavoie")
    agent = signed_in(account)
    ticket = make_ticket(subject="Re: Carte refusée")
    with factory() as session:
        customer_message = session.execute(sa.select(TicketMessage.message_id)
                                           .where(TicketMessage.ticket_id == ticket)).scalar_one()
        reference = session.get(Ticket, ticket).reference
    page = agent.get(f"/tickets/{ticket}").text
    assert '<option value="fr" selected>' in page  # the ticket's language by default
    sent = agent.post(f"/tickets/{ticket}/reply", {"text": "Bonjour,\n\nVoici comment faire.", "language": "fr",
                                                    "status_after": "waiting"})
    assert sent.status_code == 302
    with factory() as session:
        row = session.execute(sa.select(OutboxMail).where(OutboxMail.ticket_id == ticket)).scalar_one()
        status = session.get(Ticket, ticket).status
        assignee = session.get(Ticket, ticket).assignee_id
    message = message_from_string(row.raw, policy=policy.default)
    assert (row.kind, row.status) == ("reply", "pending")
    assert message["From"].addresses[0].addr_spec == "billing@net2phone.ca"
    assert message["In-Reply-To"] == customer_message and customer_message in message["References"]
    assert str(message["Subject"]) == f"RE : [{reference}] Carte refusée"
    text = message.get_content()
    assert "Voici comment faire." in text and "Sophie Lavoie" in text and "Facturation net2phone Canada" in text
    assert message["Auto-Submitted"] is None  # a person's reply
    assert (status, assignee) == ("waiting", account.id)
    assert "reply" in audit_actions(factory, ticket)


def test_an_agent_is_warned_before_sending_when_a_colleague_wrote_or_took_the_ticket_meanwhile(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    late, early = signed_in(make_agent("CA")), signed_in(make_agent("CA", name="Liam Early"))
    ticket = make_ticket()
    page = late.get(f"/tickets/{ticket}").text
    seen = page.split('name="seen_message" value="')[1].split('"')[0]
    assert early.post(f"/tickets/{ticket}/reply", {"text": "Réponse de Liam.", "language": "fr"}).status_code == 302
    warned = late.post(f"/tickets/{ticket}/reply", {"text": "Ma réponse.", "language": "fr", "seen_message": seen,
                                                     "seen_assignee": ""})
    assert warned.status_code == 409
    assert "Liam Early" in warned.text and "Ma réponse." in warned.text  # who, and the draft is kept
    with factory() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(OutboxMail)
                               .where(OutboxMail.ticket_id == ticket)).scalar_one() == 1
    confirmed = late.post(f"/tickets/{ticket}/reply", {"text": "Ma réponse.", "language": "fr", "confirm": "1"})
    assert confirmed.status_code == 302


def test_a_colleague_replying_right_now_is_shown_and_warned_about(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    writer, reader = signed_in(make_agent("CA", name="Marc Writer")), signed_in(make_agent("CA"))
    ticket = make_ticket()
    assert writer.post(f"/tickets/{ticket}/presence", {"state": "replying"}).status_code == 200
    page = reader.get(f"/tickets/{ticket}").text
    assert "Marc Writer" in page and 'data-state="replying"' in page
    seen = page.split('name="seen_message" value="')[1].split('"')[0]
    warned = reader.post(f"/tickets/{ticket}/reply", {"text": "x", "language": "fr", "seen_message": seen})
    assert warned.status_code == 409 and "Marc Writer" in warned.text
    assert writer.post(f"/tickets/{ticket}/presence", {"state": "gone"}).status_code == 200
    assert 'data-state="replying"' not in reader.get(f"/tickets/{ticket}").text


def test_a_duplicate_is_merged_into_another_ticket_and_its_mail_follows(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    agent = signed_in(make_agent("CA"))
    keep, duplicate = make_ticket(subject="Facture de mars"), make_ticket(subject="Facture de mars (encore)")
    with factory() as session:
        target = session.get(Ticket, keep).reference
    assert agent.post(f"/tickets/{duplicate}/merge", {"into": "BL-NOSUCH"}).status_code == 302
    response = agent.post(f"/tickets/{duplicate}/merge", {"into": target.lower()})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tickets/{keep}")
    with factory() as session:
        merged = session.get(Ticket, duplicate)
        assert (merged.status, merged.merged_into_id) == ("closed", keep)
        assert session.execute(sa.select(sa.func.count()).select_from(TicketMessage)
                               .where(TicketMessage.ticket_id == keep)).scalar_one() == 2
    assert "merge" in audit_actions(factory, duplicate) and "merged_in" in audit_actions(factory, keep)
    assert agent.post(f"/tickets/{keep}/merge", {"into": target}).status_code == 400  # not into itself


def test_a_flagged_misroute_is_confirmed_forwarded_and_the_customer_told_or_rejected(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    agent = signed_in(make_agent("CA"))
    confirmed = make_ticket(language="en", subject="Invoice question", misroute="unsure",
                            text="Our office is at 1200 Main St, Dallas, TX 75202.")
    rejected = make_ticket(language="fr", misroute="unsure")
    assert "Confirm: forward to the other team" in agent.get(f"/tickets/{confirmed}").text
    assert agent.post(f"/tickets/{confirmed}/misroute", {"decision": "confirm"}).status_code == 302
    with factory() as session:
        ticket = session.get(Ticket, confirmed)
        assert (ticket.team, ticket.misroute, ticket.status) == ("US", "to_us", "new")
        mails = {row.kind: row for row in session.execute(sa.select(OutboxMail).where(OutboxMail.ticket_id == confirmed)).scalars()}
    assert mails["forward"].recipient == "billing@net2phone.com" and "Dallas" in mails["forward"].raw
    notice = message_from_string(mails["notice"].raw, policy=policy.default)
    assert notice["To"].addresses[0].addr_spec == ticket.customer_email
    assert "billing@net2phone.com" in notice.get_content()
    assert agent.get(f"/tickets/{confirmed}").status_code == 403  # now the US team's
    assert agent.post(f"/tickets/{rejected}/misroute", {"decision": "reject"}).status_code == 302
    with factory() as session:
        assert session.get(Ticket, rejected).misroute == "none"
    assert "misroute_rejected" in audit_actions(factory, rejected)


def test_failed_mail_is_sent_again_and_a_quarantined_message_read_again_from_the_mail_page(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    agent = signed_in(make_agent("CA"))
    ticket = make_ticket()
    with factory() as session:
        session.add(OutboxMail(kind="ack", ticket_id=ticket, message_id=f"<{uuid.uuid4().hex}@x>", sender="a@b.c",
                               recipient="client@example.ca", raw="x", status="failed", attempts=20,
                               last_error="550 5.1.1 no such user"))
        session.add(InboundMail(mailbox="ca", uidvalidity=1, uid=int(uuid.uuid4().int % 10**9), team="CA",
                                message_id="<broken@x>", outcome="quarantined", reason="no header at all"))
        session.commit()
        failed = session.execute(sa.select(OutboxMail.id).where(OutboxMail.ticket_id == ticket)).scalar_one()
        quarantined = session.execute(sa.select(InboundMail.id).where(InboundMail.message_id == "<broken@x>")
                                      .order_by(InboundMail.id.desc())).scalars().first()
    page = agent.get("/mail").text
    assert "550 5.1.1 no such user" in page and "no header at all" in page
    assert agent.post(f"/mail/outbox/{failed}/retry").status_code == 302
    assert agent.post(f"/mail/quarantine/{quarantined}/reprocess").status_code == 302
    with factory() as session:
        assert session.get(OutboxMail, failed).status == "pending"
        assert session.get(InboundMail, quarantined).outcome == "reprocess"
    assert agent.post(f"/mail/outbox/{failed}/retry").status_code == 400  # pending now: nothing to retry


def test_supervisors_read_the_audit_trail_agents_do_not(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    agent, supervisor = signed_in(make_agent("CA")), signed_in(make_agent("CA,US", role="supervisor"))
    ticket = make_ticket()
    agent.post(f"/tickets/{ticket}/claim")
    assert agent.get("/audit").status_code == 403
    trail = supervisor.get("/audit").text
    assert "claim" in trail and agent.agent.name in trail
