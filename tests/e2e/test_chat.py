"""Conversations with the real Rasa server and action server over the REST channel, in both languages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.knowledge import load_articles
from core.settings import PROJECT_ROOT
from runner.harness import Stack
from tests.e2e.conftest import Chat, Responses

pytestmark = pytest.mark.e2e
ARTICLES = {a.id: a for a in load_articles(PROJECT_ROOT / "knowledge")}

FAQ_QUESTIONS = [
    ("en", "payment_methods", "Do you accept Discover cards?"),
    ("en", "autopay_timing", "when exactly does auto pay charge the card on file"),
    ("en", "cdr_export", "how do I export call detail records from the portal"),
    ("en", "contact_billing", "what's the phone number for the canadian billing team"),
    ("fr", "payment_methods", "quelles cartes acceptez-vous"),
    ("fr", "card_failed", "chu pas capable d'ajouter ma carte"),
    ("fr", "contact_billing", "c koi le # pour la facturation"),
    ("fr", "credit_not_in_history", "pourquoi mon credit apparait pas dans l'historique des transactions"),
    # The team's own address or number, asked of the team itself ("your" / "votre"), not a notification address.
    ("en", "contact_billing", "what email do I use to write to you?"),
    ("fr", "contact_billing", "c'est quoi votre adresse courriel?"),
]


@pytest.mark.parametrize(("language", "article_id", "question"), FAQ_QUESTIONS)
def test_an_faq_is_answered_in_the_customer_language(chat: Chat, language: str, article_id: str, question: str) -> None:
    replies = chat.say(question)
    assert [chat.responses.name_of(r["text"], language) for r in replies] == [
        ARTICLES[article_id].response, "utter_ask_helpful"
    ]
    expected_buttons = ["Yes", "No"] if language == "en" else ["Oui", "Non"]
    assert [b["title"] for b in replies[1]["buttons"]] == expected_buttons


def test_the_readme_curl_example_answers_in_french(chat: Chat) -> None:
    [answer, _] = chat.say("quelles cartes acceptez-vous")
    assert answer["text"] == ARTICLES["payment_methods"].answer["fr"]


def test_the_language_follows_the_customer_and_short_messages_keep_it(chat: Chat) -> None:
    assert chat.names("what cards do you accept", "en")[0] == "utter_faq_payment_methods"
    assert chat.names("merci", "en") == ["utter_you_are_welcome"]
    assert chat.names("comment je fais pour exporter le détail de mes appels", "fr")[0] == "utter_faq_cdr_export"
    for short in ["Visa?", "INV-2025-0042", "ok", "thanks"]:
        names = chat.names(short, "fr")
        assert names and None not in names, (short, names)
    assert chat.names("how long do you keep invoice PDFs", "en")[0] == "utter_faq_document_retention"
    assert chat.names("oui", "en")[0] == "utter_feedback_thanks"


def test_a_short_closing_in_the_other_language_switches_the_conversation(chat: Chat) -> None:
    assert chat.names("quelles cartes acceptez-vous", "fr")[0] == "utter_faq_payment_methods"
    names = chat.names("thanks, bye", "en")
    assert names and None not in names, names
    assert chat.names("do you take Amex?", "en")[0] == "utter_faq_payment_methods"
    names = chat.names("merci beaucoup, bonne journée", "fr")
    assert names and None not in names, names


@pytest.mark.parametrize(("hint", "language"), [("fr", "fr"), ("en", "en")])
def test_an_unsure_first_message_follows_the_portal_language_hint(chat: Chat, hint: str, language: str) -> None:
    names = chat.names("Visa?", language, metadata={"language": hint})
    assert names and None not in names


@pytest.mark.parametrize(
    ("language", "text", "response"),
    [
        ("en", "hello there", "utter_greet"),
        ("fr", "bonjour", "utter_greet"),
        ("en", "am I chatting with a bot", "utter_iamabot"),
        ("fr", "es-tu une vraie personne", "utter_iamabot"),
        ("en", "what can you help me with", "utter_help"),
        ("fr", "qu'est-ce que tu peux faire pour moi", "utter_help"),
    ],
)
def test_conversation_intents(chat: Chat, language: str, text: str, response: str) -> None:
    assert chat.names(text, language) == [response]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "what's the weather going to be like in Ottawa tomorrow"),
        ("en", "tell me a joke"),
        ("en", "my phone has no dial tone"),
        ("fr", "quelle température fait-il à Québec"),
        ("fr", "donne-moi une recette de pâté chinois"),
        ("fr", "ma messagerie vocale marche pas"),
    ],
)
def test_out_of_scope_gets_a_polite_fallback_not_an_faq(chat: Chat, language: str, text: str) -> None:
    assert chat.names(text, language) == ["utter_out_of_scope"]


VAGUE = {
    "en": ["invoice", "portal", "question about my account", "issue with the portal", "csv", "my bill", "cdr thing"],
    "fr": ["historique", "le portail", "question sur mon compte", "problème avec le portail", "ma facture", "relevé"],
}


@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_unsure_answer_offers_the_two_likeliest_topics_as_buttons(
    stack: Stack, responses: Responses, language: str
) -> None:
    # Which vague message the model is unsure about depends on the model; that it asks about one of them does not.
    for text in VAGUE[language]:
        chat = Chat(stack, responses)
        replies = chat.say(text)
        if len(replies) == 1 and chat.responses.name_of(replies[0]["text"], language) == "utter_clarify":
            break
    else:
        pytest.fail(f"none of {VAGUE[language]} got a clarifying question")
    buttons = replies[0]["buttons"]
    titles = {a.title[language]: a for a in ARTICLES.values()}
    assert len(buttons) == 2
    for button in buttons:
        assert button["payload"] == f"/{titles[button['title']].intent}"
    first = buttons[0]["payload"][1:]
    assert chat.names(buttons[0]["payload"], language)[0] == f"utter_{first}"


@pytest.mark.parametrize(
    ("language", "first", "second", "yes", "not_an_email"),
    [
        ("en", "who won the hockey game last night", "recommend a good pizza place", "yes please", "it is jean at example dot com"),
        ("fr", "quel temps fait-il à Montréal", "raconte-moi une blague", "oui s'il vous plaît", "c'est jean arobas exemple point ca"),
    ],
)
def test_two_misunderstandings_offer_an_email_ticket_with_the_conversation(
    chat: Chat, database: sa.engine.Engine, language: str, first: str, second: str, yes: str, not_an_email: str
) -> None:
    # Over Rasa's own REST channel no agent can join (live chat is the support site's widget): email instead.
    assert chat.names(first, language) == ["utter_out_of_scope"]
    assert chat.names(second, language) == ["utter_out_of_scope", "utter_no_live_chat", "utter_offer_email_ticket"]
    assert chat.names(yes, language) == ["utter_ask_contact_email"]
    assert chat.names(not_an_email, language) == ["utter_invalid_email", "utter_ask_contact_email"]
    [confirmation] = chat.say("client.test@exemple.ca")
    assert chat.responses.name_of(confirmation["text"], language) == "utter_handoff_recorded"
    with database.connect() as connection:
        ticket = connection.execute(
            sa.text("SELECT t.reference, t.channel, t.language, t.customer_email, m.text FROM tickets t "
                    "JOIN ticket_messages m ON m.ticket_id = t.id WHERE t.customer_email = 'client.test@exemple.ca' "
                    "AND m.text LIKE :first"), {"first": f"%{first}%"},
        ).one()
    assert ticket.reference in confirmation["text"]
    assert (ticket.channel, ticket.language) == ("email", language)
    assert second in ticket.text, "the ticket holds the conversation"


@pytest.mark.parametrize(("language", "ask", "yes", "cancel"),
                         [("en", "I want to talk to a human", "yes", "no"), ("fr", "je veux parler à un agent", "oui", "non")])
def test_asking_for_a_human_can_be_cancelled(chat: Chat, language: str, ask: str, yes: str, cancel: str) -> None:
    assert chat.names(ask, language) == ["utter_no_live_chat", "utter_offer_email_ticket"]
    assert chat.names(yes, language) == ["utter_ask_contact_email"]
    assert chat.names(cancel, language) == ["utter_handoff_cancelled"]


@pytest.mark.parametrize(
    ("language", "question", "answer", "helpful", "replies"),
    [
        ("en", "which credit cards can I use", "yes", True, ["utter_feedback_thanks"]),
        ("fr", "quels modes de paiement vous prenez", "non", False, ["utter_feedback_sorry", "utter_offer_human"]),
    ],
)
def test_was_this_helpful_is_recorded(
    chat: Chat, database: sa.engine.Engine, language: str, question: str, answer: str, helpful: bool, replies: list[str]
) -> None:
    assert chat.names(question, language)[0] == "utter_faq_payment_methods"
    assert chat.names(answer, language) == replies
    with database.connect() as connection:
        row = connection.execute(
            sa.text("SELECT article_id, language, helpful FROM feedback WHERE conversation_id = :c"), {"c": chat.sender}
        ).one()
    assert (row.article_id, row.language, bool(row.helpful)) == ("payment_methods", language, helpful)


def test_a_long_conversation_keeps_its_language_and_is_stored_whole(chat: Chat, database: sa.engine.Engine) -> None:
    assert chat.names("bonjour, quelles cartes de crédit acceptez-vous?", "fr")[0] == "utter_faq_payment_methods"
    for turn in range(40):  # far beyond the tracker window: the language was set before it
        names = chat.names(["ok", "merci", "oui", "Visa?"][turn % 4], "fr")
        assert names and None not in names, (turn, names)
    with database.connect() as connection:
        count = connection.execute(
            sa.text("SELECT count(*) FROM events WHERE sender_id = :c AND type_name = 'user'"), {"c": chat.sender}
        ).scalar_one()
    assert count == 41
