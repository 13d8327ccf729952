"""The chat widget on the demo support page and the agent console, in a real browser (headless Debian Chromium,
two browser contexts: the customer's and the agent's), on the running stack: a French customer is handed to an
agent who answers live, the customer reloads and keeps the conversation, the agent hands back and the bot answers
the next question in French; an English Billing Portal user's account shows in the console, the agent ends the
chat and the customer rates it; outside business hours an email ticket is offered and made. Screenshots of the
widget and the console's chat pages in both languages go to var/test-artifacts/."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from core.db.models import Conversation
from runner.harness import Stack
from tests.browsers import screenshot_path
from tests.e2e.conftest import ALWAYS_OPEN, CLOSED, Responses
from tests.e2e.test_console_browser import WAIT, sign_in

pytestmark = pytest.mark.e2e
PRIYA = "priya.shah@mapleleafdental.ca"


def open_widget(page: Page, stack: Stack, lang: str, user: str | None = None) -> None:
    page.goto(f"{stack.console_url}/support?lang={lang}" + (f"&user={user}" if user else ""))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.click("button.bw-launcher")
    expect(page.locator(".bw-root[data-ready='1']")).to_be_attached(timeout=WAIT)
    expect(page.locator("#bw-box")).to_be_focused()


def write(page: Page, text: str) -> None:
    page.fill("#bw-box", text)
    page.keyboard.press("Enter")
    expect(page.locator(".bw-msg[data-from='customer'] .bw-text", has_text=text).last).to_be_visible(timeout=WAIT)


def last_bot_text(page: Page) -> str:
    return page.locator(".bw-msg[data-from='bot'] .bw-text").last.inner_text()


def open_chat_ticket(page: Page, stack: Stack, said: str) -> None:
    """From the worklist, where the chat shows up live, to its ticket page."""
    row = page.locator("tr", has_text=said)
    expect(row).to_be_visible(timeout=WAIT)
    row.locator("a").first.click()
    expect(page.locator("#chat")).to_be_visible()


def test_a_french_customer_is_helped_live_then_the_bot_takes_over_again(
    stack: Stack, agents: dict[str, dict[str, str]], open_page: Callable[[], Page], responses: Responses,
) -> None:
    said = f"je conteste un montant sur ma facture ({uuid.uuid4().hex[:4]})"
    agent, customer = open_page(), open_page()
    sign_in(agent, stack, agents["ca_fr"])
    agent.goto(f"{stack.console_url}/?status=active&channel=chat")
    open_widget(customer, stack, "fr")
    expect(customer.locator(".bw-log[role='log']")).to_have_attribute("aria-live", "polite")
    expect(customer.locator("label[for='bw-box']")).to_have_count(1)
    write(customer, said)
    expect(customer.locator(".bw-root[data-state='queue']")).to_be_attached(timeout=WAIT)
    assert responses.name_of(last_bot_text(customer), "fr") == "utter_agent_coming"
    customer.screenshot(path=screenshot_path(f"widget-waiting-fr-{stack.settings.database_url[:6]}"))

    open_chat_ticket(agent, stack, said)
    agent.click("#chat-claim")
    expect(customer.locator(".bw-root[data-state='agent']")).to_be_attached(timeout=WAIT)
    agent.fill("#chat-text", "Bonjour! Je regarde votre facture de novembre.")
    agent.keyboard.press("Enter")
    reply = customer.locator(".bw-msg[data-from='agent']", has_text="Je regarde votre facture")
    expect(reply).to_be_visible(timeout=WAIT)
    expect(reply.locator(".bw-author")).to_contain_text(agents["ca_fr"]["name"])

    customer.reload()  # a reload keeps the conversation and its history
    expect(customer.locator(".bw-msg[data-from='agent']", has_text="Je regarde votre facture")).to_be_visible(timeout=WAIT)
    if not customer.locator("#bw-box").is_visible():
        customer.click("button.bw-launcher")
    write(customer, "Merci, c'est le montant des interurbains.")
    expect(agent.locator("#chat-log", has_text="Merci, c'est le montant des interurbains.")).to_be_visible(timeout=WAIT)
    assert responses.name_of(last_bot_text(customer), "fr") == "utter_agent_coming", "the bot stayed silent"
    customer.screenshot(path=screenshot_path(f"widget-agent-fr-{stack.settings.database_url[:6]}"))
    agent.screenshot(path=screenshot_path(f"console-chat-fr-{stack.settings.database_url[:6]}"), full_page=True)

    agent.click("#chat-hand-back")
    expect(customer.locator(".bw-root[data-state='bot']")).to_be_attached(timeout=WAIT)
    expect(customer.locator(".bw-msg[data-from='bot']", has_text="Rebonjour")).to_be_visible(timeout=WAIT)
    write(customer, "quels modes de paiement acceptez-vous?")
    expect(customer.locator(".bw-msg[data-from='bot']").last).not_to_contain_text("Rebonjour", timeout=WAIT)
    assert any(responses.name_of(text, "fr") == "utter_faq_payment_methods"
               for text in customer.locator(".bw-msg[data-from='bot'] .bw-text").all_inner_texts())


def test_an_english_portal_users_account_shows_and_the_ended_chat_is_rated(
    stack: Stack, agents: dict[str, dict[str, str]], open_page: Callable[[], Page], database: sa.engine.Engine,
) -> None:
    said = f"you charged us twice this month, I want a refund ({uuid.uuid4().hex[:4]})"
    agent, customer = open_page(), open_page()
    sign_in(agent, stack, agents["ca_en"])
    agent.goto(f"{stack.console_url}/?status=active&channel=chat")
    customer.goto(f"{stack.console_url}/support?lang=en")
    customer.select_option("#portal-user", PRIYA)
    customer.locator("#portal-user").evaluate("select => select.form.submit()")
    expect(customer.locator(".signed-in")).to_contain_text("Priya Shah")
    customer.click("button.bw-launcher")
    expect(customer.locator(".bw-root[data-ready='1']")).to_be_attached(timeout=WAIT)
    write(customer, said)
    expect(customer.locator(".bw-root[data-state='queue']")).to_be_attached(timeout=WAIT)
    customer.screenshot(path=screenshot_path(f"widget-waiting-en-{stack.settings.database_url[:6]}"))

    open_chat_ticket(agent, stack, said)
    expect(agent.locator("#chat")).to_contain_text("verified: Priya Shah")
    expect(agent.locator("#account-title + dl")).to_contain_text("Maple Leaf Dental Clinic (CA-100487)")
    agent.fill("#chat-text", "Hi Priya, I see the duplicate charge and I'm refunding it now.")
    agent.click("#chat-send")  # writing takes the chat: no claim needed
    expect(customer.locator(".bw-msg[data-from='agent']", has_text="refunding it now")).to_be_visible(timeout=WAIT)
    agent.screenshot(path=screenshot_path(f"console-chat-en-{stack.settings.database_url[:6]}"), full_page=True)
    agent.reload()
    agent.click("#chat-close")
    expect(customer.locator(".bw-root[data-state='closed']")).to_be_attached(timeout=WAIT)
    expect(customer.locator("form.bw-rating")).to_be_visible()
    customer.locator("input.bw-star-input[value='5']").check()
    customer.fill("#bw-comment", "Quick and clear")
    customer.click("button.bw-rate")
    expect(customer.locator("p.bw-thanks")).to_be_visible(timeout=WAIT)
    customer.screenshot(path=screenshot_path(f"widget-rated-en-{stack.settings.database_url[:6]}"))
    with database.connect() as connection:
        rating = connection.execute(sa.select(Conversation.rating, Conversation.rating_comment)
                                    .where(Conversation.owner == "closed").order_by(Conversation.id.desc())).first()
    assert tuple(rating) == (5, "Quick and clear")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_outside_business_hours_the_widget_offers_and_makes_an_email_ticket(
    stack: Stack, open_page: Callable[[], Page], responses: Responses, lang: str,
) -> None:
    stack.settings.business_hours_file.write_text(CLOSED, encoding="utf-8")
    try:
        customer = open_page()
        open_widget(customer, stack, lang)
        write(customer, "I want to talk to a person" if lang == "en" else "je veux parler à un agent")
        offer = customer.locator(".bw-msg[data-from='bot']").last
        expect(offer.locator("button.bw-choice")).to_have_count(2, timeout=WAIT)
        offer.locator("button.bw-choice").first.click()  # "Yes, please" / "Oui, s'il vous plaît"
        expect(customer.locator(".bw-msg[data-from='bot'] .bw-text").last).not_to_have_text(
            offer.locator(".bw-text").inner_text(), timeout=WAIT)
        assert responses.name_of(last_bot_text(customer), lang) == "utter_ask_contact_email"
        write(customer, f"client-{uuid.uuid4().hex[:6]}@example.ca")
        expect(customer.locator(".bw-msg[data-from='bot'] .bw-text").last).to_contain_text("BL-", timeout=WAIT)
        assert responses.name_of(last_bot_text(customer), lang) == "utter_handoff_recorded"
        customer.screenshot(path=screenshot_path(f"widget-email-ticket-{lang}-{stack.settings.database_url[:6]}"))
    finally:
        stack.settings.business_hours_file.write_text(ALWAYS_OPEN, encoding="utf-8")
