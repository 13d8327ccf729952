"""Invoices of the verified customer: the latest ones, or the one they name (number, month, position)."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.identity import AccountAction
from bot.entities import core_entities
from core.accounts import document_url, find_invoice, invoice_status, pdf_available, recent_invoices
from core.db.models import Invoice
from core.entities import invoice_reference
from core.formatting import format_day, format_money, format_month
from core.identity import Identity
from core.wording import join_words, word

LISTED = 3


def invoice_fields(invoice: Invoice, language: str, today: date) -> dict[str, str]:
    """The blanks an invoice fills in a reply, formatted for ``language``."""
    taxes = [
        f"{word(name, language)} {format_money(amount, language)}"
        for name, amount in (("gst", invoice.gst), ("hst", invoice.hst), ("qst", invoice.qst), ("pst", invoice.pst))
        if amount
    ]
    return {
        "invoice_number": str(invoice.number),
        "month": format_month(invoice.period_start, language),
        "total": format_money(invoice.total, language),
        "taxes": join_words(taxes, language),
        "status": word(invoice_status(invoice, today).value, language),
        "due_date": format_day(invoice.due_date, language),
        "issue_date": format_day(invoice.issue_date, language),
    }


class ActionShowInvoices(AccountAction):
    """Show the latest invoices, or the invoice the customer names, with its PDF link when within 24 months."""

    faq_response = "utter_faq_document_retention"

    def name(self) -> str:
        return "action_show_invoices"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        reference = invoice_reference(core_entities(tracker.latest_message.get("entities") or []), today)
        if reference.number is None and reference.month is None and reference.back is None:
            invoices = recent_invoices(session, identity.account_id, LISTED)
            if not invoices:
                dispatcher.utter_message(response="utter_no_invoices")
                return []
            dispatcher.utter_message(response="utter_invoices_intro", account_name=identity.account_name)
            for invoice in invoices:
                dispatcher.utter_message(response="utter_invoice_line", **invoice_fields(invoice, language, today))
            self.send_pdf(dispatcher, invoices[0], language, today)
            return []
        invoice = find_invoice(session, identity.account_id, reference)
        if invoice is None:
            # Whether the invoice exists on another account is never revealed: it is simply not on this one.
            asked = reference.number or (format_month(reference.month, language) if reference.month else "")
            dispatcher.utter_message(response="utter_invoice_not_found", reference=asked)
            return []
        dispatcher.utter_message(response="utter_invoice_detail", **invoice_fields(invoice, language, today))
        self.send_pdf(dispatcher, invoice, language, today)
        return []

    def send_pdf(self, dispatcher: CollectingDispatcher, invoice: Invoice, language: str, today: date) -> None:
        if pdf_available(invoice, today):
            url = document_url(self.services.settings.portal_url, str(invoice.pdf_ref))
            dispatcher.utter_message(response="utter_invoice_pdf", invoice_number=str(invoice.number), pdf_url=url)
        else:
            dispatcher.utter_message(response="utter_invoice_pdf_expired", invoice_number=str(invoice.number))
