"""The billing store's views of an account, on the demo data (SQLite and PostgreSQL): the FAQ's boundaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from core.accounts import (
    CdrAvailability,
    InvoiceStatus,
    balance_of,
    cdr_availability,
    find_invoice,
    invoice_status,
    pdf_available,
    recent_credits,
    recent_invoices,
    recent_payments,
)
from core.db.models import Account, Invoice
from core.entities import InvoiceReference
from tests.conftest import DEMO_TODAY


def account_id(session: sa.orm.Session, number: str) -> int:
    return int(session.execute(sa.select(Account.id).where(Account.number == number)).scalar_one())


def test_thirty_months_of_invoices_cross_every_faq_boundary(demo_sessions: sessionmaker) -> None:
    with demo_sessions() as session:
        invoices = recent_invoices(session, account_id(session, "CA-100487"), limit=100)
        assert len(invoices) == 30
        assert invoices[0].number == "INV-202611-0487" and invoices[-1].number == "INV-202406-0487"
        assert not pdf_available(invoices[-1], DEMO_TODAY) and pdf_available(invoices[0], DEMO_TODAY)
        availability = {cdr_availability(i, DEMO_TODAY) for i in invoices}
        assert availability == set(CdrAvailability)
        assert cdr_availability(invoices[0], DEMO_TODAY) is CdrAvailability.AVAILABLE
        july_2025 = next(i for i in invoices if i.number == "INV-202507-0487")
        assert cdr_availability(july_2025, DEMO_TODAY) is CdrAvailability.EXPIRED
        june_2025 = next(i for i in invoices if i.number == "INV-202506-0487")
        assert cdr_availability(june_2025, DEMO_TODAY) is CdrAvailability.BEFORE_JULY_2025
        for invoice in invoices:
            assert invoice.total == invoice.subtotal + invoice.hst - invoice.credits_applied
            assert isinstance(invoice.total, Decimal) and invoice.total.as_tuple().exponent == -2


def test_a_past_due_account_with_auto_pay_and_a_declined_charge(demo_sessions: sessionmaker) -> None:
    with demo_sessions() as session:
        gagnon = account_id(session, "CA-100902")
        balance = balance_of(session, gagnon, DEMO_TODAY)
        unpaid = [i for i in recent_invoices(session, gagnon, 5) if i.status == "unpaid"]
        assert len(unpaid) == 2
        assert balance.current == balance.past_due == sum(i.total for i in unpaid)
        assert balance.oldest_due == date(2026, 10, 21)
        assert [invoice_status(i, DEMO_TODAY) for i in unpaid] == [InvoiceStatus.PAST_DUE] * 2
        [payment] = recent_payments(session, gagnon, limit=1)
        assert (payment.status, payment.decline_reason, payment.autopay) == ("declined", "expired_card", True)


def test_a_credit_after_the_last_invoice_lowers_the_balance_before_any_invoice_shows_it(
    demo_sessions: sessionmaker,
) -> None:
    with demo_sessions() as session:
        tremblay = account_id(session, "CA-100231")
        balance = balance_of(session, tremblay, DEMO_TODAY)
        latest, older = recent_credits(session, tremblay)[:2]
        assert latest.invoice_id is None and latest.applied_on > recent_invoices(session, tremblay, 1)[0].issue_date
        assert older.invoice_id is not None
        assert balance.uninvoiced_credits == Decimal("25.00") and balance.current == Decimal("-25.00")


def test_a_pending_payment_leaves_the_invoice_unpaid(demo_sessions: sessionmaker) -> None:
    with demo_sessions() as session:
        pacific = account_id(session, "CA-101356")
        [payment] = recent_payments(session, pacific, limit=1)
        [latest] = recent_invoices(session, pacific, 1)
        assert payment.status == "pending" and payment.invoice_id == latest.id
        assert invoice_status(latest, DEMO_TODAY) is InvoiceStatus.PAST_DUE
        assert balance_of(session, pacific, DEMO_TODAY).current == latest.total


def test_an_invoice_is_found_only_on_its_own_account(demo_sessions: sessionmaker) -> None:
    with demo_sessions() as session:
        tremblay, maple = account_id(session, "CA-100231"), account_id(session, "CA-100487")
        theirs = InvoiceReference(number="INV-202611-0487")
        assert find_invoice(session, maple, theirs) is not None
        assert find_invoice(session, tremblay, theirs) is None
        march = find_invoice(session, tremblay, InvoiceReference(month=date(2026, 3, 1)))
        assert march is not None and march.number == "INV-202603-0231"
        before_last = find_invoice(session, tremblay, InvoiceReference(back=1))
        assert before_last is not None and before_last.number == "INV-202610-0231"
        assert find_invoice(session, tremblay, InvoiceReference(month=date(2020, 1, 1))) is None


def test_the_demo_data_is_deterministic(demo_sessions: sessionmaker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from core.db.engine import make_engine, make_session_factory
    from core.db.migrate import upgrade
    from core.demo import seed

    url = f"sqlite:///{tmp_path / 'again.db'}"
    upgrade(url)
    engine = make_engine(url)
    again = make_session_factory(engine)
    assert seed(again, DEMO_TODAY) == 5 and seed(again, DEMO_TODAY) == 0

    def invoices(factory: sessionmaker) -> list[tuple[str, Decimal, str]]:
        with factory() as session:
            rows = session.execute(sa.select(Invoice.number, Invoice.total, Invoice.status).order_by(Invoice.number))
            return [tuple(row) for row in rows]

    assert invoices(again) == invoices(demo_sessions)
    engine.dispose()
