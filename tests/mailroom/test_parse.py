"""Parsing real mail: encoded and raw 8-bit headers, wrong charsets, HTML-only mail, quoted replies and
signatures, attachments, and the prefixes of replies and forwards in English and French."""

from __future__ import annotations

import pytest

from core.references import strip_prefixes
from mailroom.mail import Mail
from mailroom.parse import decode_header_value, parse_mail, request_words, split_reply


def parsed(raw: bytes, size_limit: int = 10 * 1024 * 1024) -> Mail:
    mail = Mail(raw=raw, team="CA", mailbox="test")
    parse_mail(mail, size_limit)
    return mail


@pytest.mark.parametrize(("value", "text"), [
    ("=?utf-8?q?Re=C3=A7u_=C3=A0_temps?=", "Reçu à temps"),
    ("=?ISO-8859-1?B?RmFjdHVyZSBkZSBm6XZyaWVy?=", "Facture de février"),
    # A multi-byte character split between two adjacent words, whose separating space does not count.
    ("=?utf-8?b?UsOp?= =?utf-8?b?wqk=?=", "Ré©"),
    ("Facture =?utf-8?q?pay=C3=A9e?= deux fois", "Facture payée deux fois"),
    # A broken word stays as it was written; the good one next to it is still decoded.
    ("=?utf-8?b?!!!?= =?utf-8?q?=C3=A9t=C3=A9?=", "=?utf-8?b?!!!?= été"),
    ("=?x-unknown?q?caf=C3=A9?=", "café"),  # an unknown charset: read as UTF-8
    ("Relev\udcc3\udca9 de compte", "Relevé de compte"),  # raw UTF-8 bytes in a header
    ("Relev\udce9 de compte", "Relevé de compte"),  # raw Windows-1252 bytes in a header
    ("a long\r\n folded  subject", "a long folded subject"),
])
def test_header_values_are_decoded(value: str, text: str) -> None:
    assert decode_header_value(value) == text


def test_a_french_mail_in_windows_1252_with_8_bit_headers() -> None:
    raw = ("From: Hélène Côté <helene@example.ca>\nTo: billing@net2phone.ca\nSubject: Crédit non appliqué\n"
           "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit\n\n"
           "Bonjour, le crédit de 25 $ promis en février n'apparaît pas.\n").encode("cp1252")
    mail = parsed(raw)
    assert (mail.from_name, mail.from_address, mail.subject) == ("Hélène Côté", "helene@example.ca", "Crédit non appliqué")
    assert mail.body == "Bonjour, le crédit de 25 $ promis en février n'apparaît pas."


def test_a_wrongly_declared_charset_falls_back() -> None:
    raw = ("From: a@example.ca\nSubject: x\nContent-Type: text/plain; charset=us-ascii\n\n"
           "Merci, ça marche très bien.\n").encode("utf-8")
    assert parsed(raw).body == "Merci, ça marche très bien."


def test_html_only_mail_becomes_readable_text() -> None:
    raw = (b"From: a@example.com\nSubject: Invoice\nContent-Type: text/html; charset=utf-8\n\n"
           b"<html><body><p>Hello,</p><p>Our <b>March</b> invoice shows:</p><table><tr><td>Total</td>"
           b"<td>$538.90</td></tr></table><script>var x = 1;</script></body></html>")
    mail = parsed(raw)
    assert mail.html_only
    assert "Our March invoice shows:" in mail.body and "$538.90" in mail.body and "var x" not in mail.body


@pytest.mark.parametrize(("text", "body", "quoted_start"), [
    ("Yes, the April one too.\n\nOn Tue, Mar 3, 2026 at 9:14 AM Billing <billing@net2phone.ca> wrote:\n> Hello",
     "Yes, the April one too.", "On Tue"),
    ("Oui, celle d'avril aussi.\n\nLe mar. 3 mars 2026 à 09 h 14, Facturation <billing@net2phone.ca> a écrit :\n> Bonjour",
     "Oui, celle d'avril aussi.", "Le mar."),
    ("Merci!\n\nDe : Facturation <billing@net2phone.ca>\nEnvoyé : 3 mars 2026 09:14\nÀ : moi\nObjet : RE : facture",
     "Merci!", "De :"),
    ("See below\n-----Original Message-----\nFrom: x", "See below", "-----Original Message-----"),
])
def test_quoted_replies_are_set_apart(text: str, body: str, quoted_start: str) -> None:
    new, quoted, _ = split_reply(text)
    assert new == body and quoted.startswith(quoted_start)


@pytest.mark.parametrize(("text", "body", "signature_start"), [
    ("Where are my call records for June?\n\nThanks,\nAaron Mitchell\nLakehead Logistics\n807-555-0142",
     "Where are my call records for June?", "Thanks,"),
    ("Ma carte est refusée.\n\nCordialement,\nFrédérique Gagné\nClinique Rive-Sud", "Ma carte est refusée.",
     "Cordialement,"),
    ("My payment is pending.\n-- \nJane\nSent from my iPhone", "My payment is pending.", "--"),
])
def test_signatures_are_set_apart(text: str, body: str, signature_start: str) -> None:
    new, _, signature = split_reply(text)
    assert new == body and signature.startswith(signature_start)


@pytest.mark.parametrize(("body", "words"), [
    ("J'aurais besoin des factures de 2025 en PDF.\n\nMerci beaucoup et bonne journée,\n\nHélène Gagnon, CPA\n"
     "Gagnon & Associés\n1455, rue King Ouest\n\nAVIS DE CONFIDENTIALITÉ : Ce courriel est confidentiel. Si vous "
     "l'avez reçu par erreur, veuillez le détruire.", "J'aurais besoin des factures de 2025 en PDF."),
    ("Please send the March invoice.\n\nThanks for your help,\nDana\nOffice Manager, Address: 12 Main St",
     "Please send the March invoice."),
    ("Please send the March invoice.\n\nCONFIDENTIALITY NOTICE: this e-mail is intended only for the addressee.",
     "Please send the March invoice."),
    # A request is no closing: "Merci de faire le paiement." stays, as does a mail that is only a notice's words.
    ("Bonjour,\nMerci de faire le paiement de la facture d'avril.\nLuc", "Bonjour,\nMerci de faire le paiement de la "
     "facture d'avril.\nLuc"),
    ("This message is confidential: it is intended for the billing team only. My card was declined.",
     "This message is confidential: it is intended for the billing team only. My card was declined."),
])
def test_the_queue_is_chosen_on_the_request_not_the_sign_off_or_the_legal_notice(body: str, words: str) -> None:
    assert request_words(body) == words


def test_attachments_are_recorded_with_name_type_and_size() -> None:
    raw = (b"From: a@example.ca\nSubject: Statement\nMIME-Version: 1.0\n"
           b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n'
           b"See attached.\n--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
           b'Content-Disposition: attachment; filename="=?utf-8?q?relev=C3=A9.pdf?="\n\nJVBERi0xLjQK\n--b--\n')
    mail = parsed(raw)
    assert mail.body == "See attached."
    assert [(a.filename, a.content_type, a.size) for a in mail.attachments] == [("relevé.pdf", "application/pdf", 9)]


def test_a_mail_over_the_size_limit_keeps_its_text_not_its_attachments() -> None:
    raw = (b"From: a@example.ca\nSubject: Big\nMIME-Version: 1.0\n"
           b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nHere it is.\n'
           b"--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=scan.png\n\n"
           + b"x" * 2000 + b"\n--b--\n")
    mail = parsed(raw, size_limit=1000)
    assert mail.body == "Here it is." and mail.attachments == [] and mail.attachments_dropped
    assert any("exceeds" in reason for reason in mail.reasons)


def test_leading_junk_before_the_headers_is_ignored() -> None:
    raw = b"\xef\xbb\xbfFrom - Tue Mar  3 09:14:00 2026\n\nFrom: a@example.ca\nSubject: Hi\n\nHello\n"
    mail = parsed(raw.replace(b"\n\nFrom:", b"\nFrom:"))
    assert (mail.from_address, mail.subject, mail.body) == ("a@example.ca", "Hi", "Hello")


@pytest.mark.parametrize("subject", [
    "Re: Facture", "RE : Facture", "TR : Facture", "Fwd: Facture", "FW : Facture", "Réf. : Facture",
    "Re: RE : TR: Facture", "AW: Facture", "Re[2]: Facture", "Réponse : Facture", "Transféré : Facture",
])
def test_reply_and_forward_prefixes_in_both_languages(subject: str) -> None:
    assert strip_prefixes(subject) == "Facture"
