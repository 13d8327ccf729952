"""Every page and endpoint refuses an anonymous request; every state change needs the session's CSRF token;
another team's ticket is refused and logged; what a customer wrote is escaped; no header can be injected into
mail; no password or session token reaches the logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from email import message_from_string, policy

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from core.agents import AgentError
from core.db.models import Agent as Agent_
from core.db.models import OutboxMail, Ticket
from tests.console.conftest import PASSWORD, Agent, StaffAccount, csrf_of

PUBLIC = {"auth.login", "auth.language", "static", "health"}
# The support site's: the widget's files, the demo page, and the start of a conversation (which gives its key;
# every other call of the widget needs that key).
CUSTOMERS = {"widget.asset", "widget.support", "widget.start"}


def routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) of every route, ids filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        url = re.sub(r"<(?:int:)?(\w+)>", "1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def test_every_page_and_endpoint_refuses_an_anonymous_request(app: Flask) -> None:
    client = app.test_client()
    checked = 0
    for endpoint, method, url in routes(app):
        if endpoint in PUBLIC | CUSTOMERS:
            continue
        if endpoint.startswith("widget."):  # a customer's call without the conversation's key
            response = client.open(url, method=method, json={"text": "hello", "stars": 5, "typing": True})
            assert response.status_code == 401 and response.json["error"] == "unknown_conversation", endpoint
            checked += 1
            continue
        if method == "GET":
            response = client.get(url)
            assert response.status_code in (302, 401), (endpoint, url, response.status_code)
            if response.status_code == 302:
                assert "/login" in response.headers["Location"], endpoint
            scripted = client.get(url, headers={"X-Requested-With": "fetch"})
            assert scripted.status_code == 401, endpoint
        else:
            page = client.get("/login")
            response = client.post(url, data={"csrf_token": csrf_of(page.text)})
            assert response.status_code == 401, (endpoint, url, response.status_code)
        checked += 1
    assert checked >= 15


def test_every_state_change_without_the_csrf_token_is_refused(
    app: Flask, make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    agent = signed_in(make_agent())
    ticket = make_ticket()
    for endpoint, method, url in routes(app):
        if method != "POST" or endpoint.startswith("widget."):
            continue  # (the widget's calls use no cookie, only the conversation's key: nothing to forge)
        url = url.replace("/1/", f"/{ticket}/") if url.startswith("/tickets/") else url
        for token in (None, "forged-token"):
            data = {"text": "bonjour", "state": "viewing", "field": "status", "value": "open", "language": "fr"}
            if token:
                data["csrf_token"] = token
            response = agent.client.post(url, data=data)
            assert response.status_code == 400, (endpoint, response.status_code)
            assert "CSRF" in response.text or "csrf" in response.text.lower(), endpoint
        # and from a script, without the header
        assert agent.client.post(url, headers={"X-Requested-With": "fetch"}).status_code == 400
    assert agent.get(f"/tickets/{ticket}").status_code == 200  # nothing of the above changed the ticket
    assert "Nobody has this ticket" in agent.get(f"/tickets/{ticket}").text


def test_another_teams_ticket_is_refused_everywhere_and_logged(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], caplog: pytest.LogCaptureFixture, factory: sessionmaker[Session],
) -> None:
    canadian = signed_in(make_agent("CA"))
    american_ticket = make_ticket(team="US", language="en", subject="Sales tax")
    with caplog.at_level(logging.WARNING, logger="console.tickets"):
        assert canadian.get(f"/tickets/{american_ticket}").status_code == 403
        assert canadian.get(f"/tickets/{american_ticket}/live").status_code == 403
        for action, data in (("claim", {}), ("assign", {"assignee": str(canadian.agent.id)}),
                             ("set", {"field": "status", "value": "closed"}), ("note", {"text": "hi"}),
                             ("reply", {"text": "hi", "language": "en"}), ("merge", {"into": "BL-AAAAAA"}),
                             ("misroute", {"decision": "reject"}), ("presence", {"state": "viewing"})):
            assert canadian.post(f"/tickets/{american_ticket}/{action}", data).status_code == 403, action
    assert any("refused" in r.getMessage() and "US team" in r.getMessage() for r in caplog.records)
    with factory() as session:
        ticket = session.get(Ticket, american_ticket)
        assert (ticket.status, ticket.assignee_id) == ("new", None)
    listed = canadian.get("/?status=all&q=Sales+tax").text
    assert "data-ticket=" not in listed and "No ticket here." in listed
    supervisor = signed_in(make_agent("CA", role="supervisor"))
    assert supervisor.get(f"/tickets/{american_ticket}").status_code == 200


def test_what_a_customer_wrote_is_shown_as_text_never_as_markup(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int],
) -> None:
    agent = signed_in(make_agent())
    hostile = ('<script>alert("x")</script><img src=x onerror="alert(1)"> <a href="javascript:alert(2)">clic</a>')
    ticket = make_ticket(subject=f"Facture {hostile}", text=f"Bonjour {hostile}", customer_company=f"Garage {hostile}")
    page = agent.get(f"/tickets/{ticket}")
    assert "<script>alert" not in page.text and "<img src=x" not in page.text and 'href="javascript:' not in page.text
    assert "&lt;script&gt;alert" in page.text
    assert 'class="company"' in page.text and "Garage &lt;script&gt;" in page.text  # the signature's company too
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    listing = agent.get("/?q=Facture")
    assert "<script>alert" not in listing.text and "&lt;script&gt;" in listing.text


def test_no_header_can_be_injected_through_a_subject_or_an_agent_name(
    make_agent: Callable[..., StaffAccount], signed_in: Callable[[StaffAccount], Agent],
    make_ticket: Callable[..., int], factory: sessionmaker[Session],
) -> None:
    with pytest.raises(AgentError, match="on one line"):
        make_agent(name="Eve\r\nBcc: victim@example.com")  # refused when the agent is created...
    account = make_agent()
    with factory() as session:  # ...and harmless if one got into the store some other way
        session.execute(sa.update(Agent_).where(Agent_.id == account.id).values(name="Eve\r\nBcc: victim@example.com"))
        session.commit()
    agent = signed_in(account)
    ticket = make_ticket(subject="Facture\r\nBcc: everyone@example.com\nX-Injected: yes")
    assert agent.post(f"/tickets/{ticket}/reply", {"text": "Bonjour,\nvoici.", "language": "fr"}).status_code == 302
    with factory() as session:
        raw = session.execute(sa.select(OutboxMail.raw).where(OutboxMail.ticket_id == ticket)).scalar_one()
    message = message_from_string(raw, policy=policy.default)
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert all(name.lower() not in ("bcc", "x-injected") for name in message.keys())
    assert "Facture" in str(message["Subject"])


def test_no_password_or_session_token_reaches_the_logs(
    app: Flask, make_agent: Callable[..., StaffAccount], caplog: pytest.LogCaptureFixture,
) -> None:
    account = make_agent()
    with caplog.at_level(logging.DEBUG):
        client = app.test_client()
        page = client.get("/login")
        client.post("/login", data={"email": account.email, "password": "a wrong one 123", "csrf_token": csrf_of(page.text)})
        client.post("/login", data={"email": account.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})
        client.get("/")
        cookie = client.get_cookie("billing_console").value
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert PASSWORD not in logged and "a wrong one 123" not in logged and cookie not in logged
