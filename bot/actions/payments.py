"""Status of the verified customer's last payment, and what a pending or declined one means."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.identity import AccountAction
from core.accounts import recent_payments
from core.formatting import format_day, format_money
from core.identity import Identity
from core.wording import word

RESPONSES = {
    "accepted": "utter_payment_accepted",
    "pending": "utter_payment_pending",
    "declined": "utter_payment_declined",
}


class ActionShowPaymentStatus(AccountAction):
    """The last payment: accepted, pending (and why no second payment can be submitted meanwhile) or declined
    (and what to check)."""

    faq_response = "utter_faq_payment_pending"

    def name(self) -> str:
        return "action_show_payment_status"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        payments = recent_payments(session, identity.account_id, limit=1)
        if not payments:
            dispatcher.utter_message(response="utter_payment_none")
            return []
        payment = payments[0]
        dispatcher.utter_message(
            response=RESPONSES.get(str(payment.status), "utter_payment_accepted"),
            amount=format_money(payment.amount, language),
            method=word(str(payment.method), language),
            last4=str(payment.card_last4 or "----"),
            date=format_day(payment.submitted_at.date(), language),
            reason=word(str(payment.decline_reason or "declined_by_bank"), language),
        )
        return []
