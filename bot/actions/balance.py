"""Balance and past-due amount of the verified customer's account, with what explains them."""

from __future__ import annotations

from datetime import date
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.actions.identity import AccountAction
from core.accounts import ZERO, balance_of, first_of_next_month, recent_payments
from core.db.models import Account
from core.formatting import format_day, format_money
from core.identity import Identity
from core.wording import word


class ActionShowBalance(AccountAction):
    """Current balance, past-due amount, and why: a declined Auto Pay charge, a pending payment, a recent credit."""

    def name(self) -> str:
        return "action_show_balance"

    def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, session: Session, identity: Identity,
        language: str, today: date,
    ) -> list[dict[str, Any]]:
        balance = balance_of(session, identity.account_id, today)
        money = lambda amount: format_money(amount, language)  # noqa: E731 (a local shorthand)
        if balance.current < ZERO:
            dispatcher.utter_message(
                response="utter_balance_credit", account_name=identity.account_name, amount=money(-balance.current)
            )
        else:
            dispatcher.utter_message(
                response="utter_balance", account_name=identity.account_name, balance=money(balance.current)
            )
        if balance.past_due > ZERO and balance.oldest_due is not None:
            dispatcher.utter_message(
                response="utter_balance_past_due", past_due=money(balance.past_due),
                oldest_due=format_day(balance.oldest_due, language),
            )
        payments = recent_payments(session, identity.account_id, limit=1)
        account = session.get(Account, identity.account_id)
        if payments and payments[0].status == "declined" and account is not None and account.autopay:
            declined = payments[0]
            dispatcher.utter_message(
                response="utter_balance_autopay_declined", amount=money(declined.amount),
                date=format_day(declined.submitted_at.date(), language),
                reason=word(str(declined.decline_reason or "declined_by_bank"), language),
            )
        elif payments and payments[0].status == "pending":
            dispatcher.utter_message(
                response="utter_balance_pending_payment", amount=money(payments[0].amount),
                date=format_day(payments[0].submitted_at.date(), language),
            )
        if balance.uninvoiced_credits > ZERO:
            dispatcher.utter_message(
                response="utter_balance_uninvoiced_credit", amount=money(balance.uninvoiced_credits),
                next_invoice=format_day(first_of_next_month(today), language),
            )
        return []
