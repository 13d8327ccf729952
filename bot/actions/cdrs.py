"""The CDR export of one of the verified customer's invoices, or the FAQ's guidance when there is none."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.identity import AccountAction
from bot.entities import core_entities
from core.accounts import CdrAvailability, cdr_availability, cdr_export_of, document_url, find_invoice
from core.entities import invoice_reference
from core.formatting import format_month
from core.identity import Identity


class ActionShowCdrExport(AccountAction):
    """The export link of the named (default: latest) invoice within 6 months; otherwise why not and what to do."""

    faq_response = "utter_faq_cdr_export"

    def name(self) -> str:
        return "action_show_cdr_export"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        reference = invoice_reference(core_entities(tracker.latest_message.get("entities") or []), today)
        invoice = find_invoice(session, identity.account_id, reference)
        if invoice is None:
            asked = reference.number or (format_month(reference.month, language) if reference.month else "")
            dispatcher.utter_message(response="utter_invoice_not_found", reference=asked)
            return []
        fields = {"invoice_number": str(invoice.number), "month": format_month(invoice.period_start, language)}
        availability = cdr_availability(invoice, today)
        export = cdr_export_of(session, invoice) if availability is CdrAvailability.AVAILABLE else None
        if export is not None:
            link = document_url(self.services.settings.portal_url, str(export.link))
            dispatcher.utter_message(response="utter_cdr_link", link=link, **fields)
        elif availability is CdrAvailability.BEFORE_JULY_2025:
            dispatcher.utter_message(response="utter_cdr_before_july_2025", **fields)
        else:
            dispatcher.utter_message(response="utter_cdr_expired", **fields)
        return []
