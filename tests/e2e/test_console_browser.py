"""The agent console in a real browser (headless Debian Chromium), on the running stack: agents sign in in English
and in French, see their queues fill up live as mail arrives in Dovecot, answer a French ticket with a suggested
answer (the real SMTP server receives it in the customer's thread), see the customer's answer reopen it, confirm
a misroute, have a quarantined message read again, and see a colleague's claim without reloading. Every page is
screenshotted in both languages into var/test-artifacts/."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import imapclient
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from core.db.models import InboundMail, Ticket
from runner.harness import Stack
from tests.browsers import screenshot_path
from tests.conftest import MAIL_USERS
from tests.mailroom.servers import Dovecot, SmtpServer

pytestmark = pytest.mark.e2e
WAIT = 30_000  # ms: how long a page may take to show what the server pushes (IDLE, triage, the live feed)


def mail(sender: str, name: str, subject: str, body: str, to: str = "billing@net2phone.ca",
         html: str | None = None, **headers: str) -> tuple[bytes, str]:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message_id = make_msgid(domain=sender.split("@")[1])
    message["Message-ID"] = message_id
    for key, value in headers.items():
        message[key.replace("_", "-")] = value
    if html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content(body)
    return message.as_bytes(), message_id


def sign_in(page: Page, stack: Stack, agent: dict[str, str], language: str | None = "own") -> None:
    """Sign in; the console then speaks ``language`` (by default the agent's own; None: whatever they chose)."""
    page.goto(f"{stack.console_url}/login")
    page.fill("#email", agent["email"])
    page.fill("#password", agent["password"])
    page.click("form.stack button[type=submit]")
    if language is not None:
        expect(page.locator("html")).to_have_attribute("lang", agent["language"] if language == "own" else language)
    expect(page.locator("table.tickets, p.empty").first).to_be_visible()


def ticket_of(database: sa.engine.Engine, message_id: str) -> Any:
    with database.connect() as connection:
        return connection.execute(sa.text(
            "SELECT t.id, t.reference, t.status, t.team, t.misroute FROM tickets t JOIN ticket_messages m "
            "ON m.ticket_id = t.id WHERE m.message_id = :id"), {"id": message_id}).first()


def messages_to(smtp: SmtpServer, recipient: str, count: int = 1, about: str = "") -> list[Any]:
    """The messages the SMTP server received for ``recipient`` whose subject holds ``about`` (the SMTP server
    serves the stacks of both databases), waiting for ``count`` of them."""
    def found() -> list[Any]:
        return [m for _, to, m in smtp.recorder.messages if recipient in to and about in str(m["Subject"])]

    with smtp.recorder.arrived:
        smtp.recorder.arrived.wait_for(lambda: len(found()) >= count, timeout=WAIT / 1000)
        return found()


def test_agents_answer_a_french_ticket_with_a_suggested_answer_and_the_customer_answers_back(
    stack: Stack, dovecot: Dovecot, stack_smtp: SmtpServer, database: sa.engine.Engine, agents: dict[str, dict[str, str]],
    open_page: Callable[[], Page],
) -> None:
    page = open_page()
    sign_in(page, stack, agents["ca_fr"])
    page.screenshot(path=screenshot_path(f"console-queues-fr-{stack.settings.database_url[:6]}"))
    customer = f"cliente-{uuid.uuid4().hex[:6]}@boulangerie-exemple.ca"
    raw, message_id = mail(customer, "Josée Gagnon", "Carte refusée dans le portail",
                           "Bonjour,\n\nQuand j'ajoute ma carte de crédit dans le portail de facturation, elle est "
                           "refusée. Pourquoi ma carte est-elle refusée?\n\nMerci,\nJosée")
    dovecot.deliver("stack-ca", raw)
    row = page.locator("tr", has_text="Carte refusée dans le portail")
    expect(row).to_be_visible(timeout=WAIT)  # pushed to the open page: no reload
    row.locator("td.subject a").click()
    expect(page.locator("h1")).to_contain_text("Carte refusée dans le portail")
    page.locator("button.insert").first.click()
    reply = page.locator("#reply-text")
    expect(reply).not_to_have_value("")
    inserted = reply.input_value()
    reply.press("Control+Home")
    reply.type("Bonjour Josée,\n\n")
    page.screenshot(path=screenshot_path(f"console-ticket-fr-{stack.settings.database_url[:6]}"), full_page=True)
    page.click("#reply-form button[type=submit]")
    expect(page.locator(".flash-info")).to_be_visible()

    [sent] = messages_to(stack_smtp, customer, 2)[1:]  # the acknowledgement, then the agent's reply
    assert sent["In-Reply-To"] == message_id and message_id in sent["References"]
    ticket = ticket_of(database, message_id)
    assert f"[{ticket.reference}]" in sent["Subject"] and ticket.status == "waiting"
    body = sent.get_content()
    assert "Bonjour Josée," in body and inserted.split("\n")[0][:40] in body
    assert agents["ca_fr"]["name"] in body and "Facturation net2phone Canada" in body

    answer, _ = mail(customer, "Josée Gagnon", f"Re: {sent['Subject']}", "Merci, mais ça ne marche toujours pas.",
                     In_Reply_To=sent["Message-ID"], References=f"{message_id} {sent['Message-ID']}")
    dovecot.deliver("stack-ca", answer)
    expect(page.locator(".thread")).to_contain_text("ça ne marche toujours pas", timeout=WAIT)  # live
    expect(page.locator("#presence")).to_contain_text("Ouvert", timeout=WAIT)  # reopened: no longer waiting
    assert ticket_of(database, message_id).status == "open"


def test_a_colleagues_claim_appears_without_reloading_and_each_page_speaks_english(
    stack: Stack, dovecot: Dovecot, database: sa.engine.Engine, agents: dict[str, dict[str, str]],
    open_page: Callable[[], Page],
) -> None:
    raw, message_id = mail(f"owner-{uuid.uuid4().hex[:6]}@example-dental.ca", "Priya Test", "Copy of my March invoice",
                           "Hello, could you send me a copy of my March invoice as a PDF? Thanks.")
    dovecot.deliver("stack-ca", raw)
    watcher, claimer = open_page(), open_page()
    sign_in(watcher, stack, agents["ca_en"])
    sign_in(claimer, stack, agents["supervisor"])
    expect(watcher.locator("tr", has_text="Copy of my March invoice")).to_be_visible(timeout=WAIT)
    watcher.screenshot(path=screenshot_path(f"console-queues-en-{stack.settings.database_url[:6]}"), full_page=True)
    ticket = ticket_of(database, message_id)
    watcher.goto(f"{stack.console_url}/tickets/{ticket.id}")
    claimer.goto(f"{stack.console_url}/tickets/{ticket.id}")
    expect(watcher.locator("#presence")).to_contain_text("Nobody has this ticket")
    expect(watcher.locator("#presence")).to_contain_text("Nadia Cloutier", timeout=WAIT)  # she is here too
    claimer.click("#claim")
    expect(watcher.locator("#presence")).to_contain_text("Assigned to Nadia Cloutier", timeout=WAIT)
    expect(watcher.locator("#collision-warning")).to_be_visible()
    watcher.screenshot(path=screenshot_path(f"console-ticket-en-{stack.settings.database_url[:6]}"), full_page=True)
    watcher.goto(f"{stack.console_url}/")
    expect(watcher.locator("tr", has_text="Copy of my March invoice").locator("td.assignee")).to_have_text("Nadia Cloutier")


def test_a_misroute_is_confirmed_and_a_quarantined_message_read_again(
    stack: Stack, dovecot: Dovecot, stack_smtp: SmtpServer, database: sa.engine.Engine,
    agents: dict[str, dict[str, str]], open_page: Callable[[], Page],
) -> None:
    # US clues (a Dallas area code, sales tax) against a Canadian one (the .ca domain): unsure, for an agent.
    customer = f"office-{uuid.uuid4().hex[:6]}@lonestar-roofing.ca"
    raw, message_id = mail(customer, "Dale Hicks", "Question on our bill",
                           "Hi, our invoice this month looks higher, is it the sales tax? Can someone check it?\n\n"
                           "Dale\n(214) 555-0187")
    dovecot.deliver("stack-ca", raw)
    page = open_page()
    sign_in(page, stack, agents["ca_en"])
    expect(page.locator("tr", has_text="Question on our bill")).to_be_visible(timeout=WAIT)
    ticket = ticket_of(database, message_id)
    assert ticket.misroute == "unsure", "US and Canadian clues: flagged, never forwarded on its own"
    page.goto(f"{stack.console_url}/tickets/{ticket.id}")
    page.click("button[name=decision][value=confirm]")
    expect(page.locator(".flash-info")).to_contain_text("Forwarded to the other team")  # the US team's now
    [forward] = messages_to(stack_smtp, "billing@net2phone.com", about=ticket.reference)
    assert ticket.reference in forward["Subject"] and "(214) 555-0187" in forward.get_content()
    notice = messages_to(stack_smtp, customer, 2)[-1]  # (the customer's own address: this test's alone)
    assert "billing@net2phone.com" in notice.get_content()
    assert ticket_of(database, message_id).team == "US"

    # A message an earlier mailroom quarantined (a stage that failed then, fixed since) is read again.
    raw, quarantined_id = mail(f"late-{uuid.uuid4().hex[:6]}@example.ca", "Luc Late", "Mon crédit n'apparaît pas",
                               "Bonjour, le crédit promis n'apparaît pas dans l'historique des transactions.")
    client = imapclient.IMAPClient("127.0.0.1", port=dovecot.port, ssl=False)
    client.login("stack-ca", MAIL_USERS["stack-ca"])
    uidvalidity = int(client.select_folder("INBOX")[b"UIDVALIDITY"])
    appended = client.append("INBOX", raw, flags=[b"$BillingTriaged", b"$BillingQuarantined"])
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", appended).group(1))  # type: ignore[union-attr]
    client.logout()
    with database.begin() as connection:
        connection.execute(sa.insert(InboundMail).values(
            mailbox="stack-ca", uidvalidity=uidvalidity, uid=uid, team="CA", message_id=quarantined_id,
            outcome="quarantined", reason="KeyError: 'charset' (a stage that failed, fixed since)",
            handled_at=sa.func.now()))
    page.goto(f"{stack.console_url}/mail")
    row = page.locator("tr", has_text="a stage that failed, fixed since")
    expect(row).to_be_visible()
    page.screenshot(path=screenshot_path(f"console-mail-en-{stack.settings.database_url[:6]}"), full_page=True)
    row.locator("button").click()
    expect(page.locator(".flash-info")).to_be_visible()
    page.goto(f"{stack.console_url}/")
    expect(page.locator("tr", has_text="Mon crédit n'apparaît pas")).to_be_visible(timeout=WAIT)
    assert ticket_of(database, quarantined_id) is not None


def test_html_mail_with_scripts_never_runs_in_the_agents_browser(
    stack: Stack, dovecot: Dovecot, database: sa.engine.Engine, agents: dict[str, dict[str, str]],
    open_page: Callable[[], Page],
) -> None:
    hostile = ('<p>Bonjour, voici ma facture.</p><script>window.pwned = 1; alert("script")</script>'
               '<img src="x" onerror="window.pwned = 2; alert(1)"><a href="javascript:window.pwned=3">cliquez</a>'
               '<iframe src="javascript:alert(4)"></iframe><svg onload="alert(5)"></svg>')
    raw, message_id = mail(f"html-{uuid.uuid4().hex[:6]}@example.ca", "Pirate <b>Html</b>",
                           '<img src=x onerror="alert(6)"> Facture HTML', "", html=hostile)
    dovecot.deliver("stack-ca", raw)
    page = open_page()  # fails the test on any dialog (alert)
    sign_in(page, stack, agents["ca_fr"])
    expect(page.locator("tr", has_text="Facture HTML")).to_be_visible(timeout=WAIT)
    page.goto(f"{stack.console_url}/tickets/{ticket_of(database, message_id).id}")
    expect(page.locator(".thread")).to_contain_text("voici ma facture")
    assert page.locator(".thread a").count() == 0  # "cliquez" is text, not a link
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # ours alone
    assert page.evaluate("document.querySelectorAll('.thread img, .thread iframe, .thread svg, .thread a').length") == 0
    assert page.evaluate("document.querySelectorAll('h1 img').length") == 0


def test_every_page_in_both_languages(stack: Stack, agents: dict[str, dict[str, str]],
                                      open_page: Callable[[], Page], database: sa.engine.Engine) -> None:
    with database.connect() as connection:
        ticket = connection.execute(sa.select(Ticket.id).where(Ticket.team == "CA").order_by(Ticket.id)).scalar()
    for language in ("en", "fr"):
        page = open_page()
        page.goto(f"{stack.console_url}/login?lang={language}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        page.screenshot(path=screenshot_path(f"console-login-{language}"))
        sign_in(page, stack, agents["supervisor"], language=None)
        page.click(f"form.language button[value={language}]")
        expect(page.locator("html")).to_have_attribute("lang", language)
        for name, path in (("queues", "/"), ("ticket", f"/tickets/{ticket}"), ("mail", "/mail"),
                           ("audit", "/audit"), ("password", "/password")):
            page.goto(f"{stack.console_url}{path}")
            expect(page.locator("h1").first).to_be_visible()
            page.screenshot(path=screenshot_path(f"console-{name}-{language}"), full_page=True)
        page.goto(f"{stack.console_url}/tickets/999999999")
        expect(page.locator("h1")).to_have_text("There is no such ticket." if language == "en"
                                                else "Ce dossier n'existe pas.")
