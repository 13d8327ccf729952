"""Credits on the verified customer's account, and why a recent one is not yet in the Transaction History."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.identity import AccountAction
from core.accounts import first_of_next_month, invoice_number_of, recent_credits
from core.formatting import format_day, format_money
from core.identity import Identity


class ActionShowCredits(AccountAction):
    """List recent credits: on which invoice each shows, or that it already lowered the Current Balance and will
    show in the Transaction History after the next invoice."""

    faq_response = "utter_faq_credit_not_in_history"

    def name(self) -> str:
        return "action_show_credits"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        credits = recent_credits(session, identity.account_id)
        if not credits:
            dispatcher.utter_message(response="utter_credits_none", account_name=identity.account_name)
            return []
        dispatcher.utter_message(response="utter_credits_intro", account_name=identity.account_name)
        for credit in credits:
            fields = {
                "amount": format_money(credit.amount, language),
                "date": format_day(credit.applied_on, language),
                "reason": str(credit.reason),
            }
            number = invoice_number_of(session, credit.invoice_id)
            if number is None:
                dispatcher.utter_message(
                    response="utter_credit_line_pending", next_invoice=format_day(first_of_next_month(today), language),
                    **fields,
                )
            else:
                dispatcher.utter_message(response="utter_credit_line_invoiced", invoice_number=number, **fields)
        return []
