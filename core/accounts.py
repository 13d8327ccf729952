"""What a verified customer may see of their own account: invoices, balance, credits, CDR exports, payments.

Every query takes the account id from a verified ``Identity`` and filters on it: an invoice number of another
account is simply not found. The FAQ's rules live here as data: invoice PDFs for 24 months, CDR exports for 6
months, and the June 2025 spreadsheet / billed exports for call details of invoices before July 2025.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.dates import add_months, first_of_month
from core.db.models import Account, AccountRequest, CdrExport, Credit, Invoice, Payment, PortalUser
from core.entities import InvoiceReference

PDF_RETENTION_MONTHS = 24
CDR_RETENTION_MONTHS = 6
# Call details of invoices before July 2025 came from the previous billing system (see the FAQ).
NEW_CDR_SYSTEM_START = date(2025, 7, 1)
ZERO = Decimal("0.00")


def first_of_next_month(day: date) -> date:
    """When the next monthly invoice is generated (the 1st of the following month)."""
    return first_of_month(day, 1)


class InvoiceStatus(str, Enum):
    """An invoice as the customer sees it."""

    PAID = "paid"
    UNPAID = "unpaid"
    PAST_DUE = "past_due"


def invoice_status(invoice: Invoice, today: date) -> InvoiceStatus:
    """Paid, unpaid, or past due (unpaid after its due date)."""
    if invoice.status == "paid":
        return InvoiceStatus.PAID
    return InvoiceStatus.PAST_DUE if invoice.due_date < today else InvoiceStatus.UNPAID


def pdf_available(invoice: Invoice, today: date) -> bool:
    """Invoice PDFs are available for 24 months."""
    return bool(invoice.issue_date > add_months(today, -PDF_RETENTION_MONTHS))


def document_url(portal_url: str, reference: str) -> str:
    """A Billing Portal link to a stored document."""
    return f"{portal_url.rstrip('/')}/{reference.lstrip('/')}"


def recent_invoices(session: Session, account_id: int, limit: int = 3) -> list[Invoice]:
    """The account's latest invoices, newest first."""
    query = select(Invoice).where(Invoice.account_id == account_id).order_by(Invoice.issue_date.desc()).limit(limit)
    return list(session.execute(query).scalars())


def find_invoice(session: Session, account_id: int, reference: InvoiceReference) -> Invoice | None:
    """The account's invoice a customer names (by number, month or position), or None: never another account's."""
    query = select(Invoice).where(Invoice.account_id == account_id)
    if reference.number is not None:
        query = query.where(Invoice.number == reference.number)
    elif reference.month is not None:
        following = add_months(reference.month, 1)
        query = query.where(Invoice.issue_date >= reference.month, Invoice.issue_date < following)
    query = query.order_by(Invoice.issue_date.desc()).offset(reference.back or 0).limit(1)
    invoice: Invoice | None = session.execute(query).scalars().first()
    return invoice


@dataclass(frozen=True)
class Balance:
    """An account's money position.

    Attributes:
        current: what is owed now: unpaid invoices less credits not yet on an invoice.
        past_due: the unpaid invoices whose due date has passed.
        oldest_due: the due date of the oldest past-due invoice.
        uninvoiced_credits: credits already taken off the balance that no invoice shows yet.
    """

    current: Decimal
    past_due: Decimal
    oldest_due: date | None
    uninvoiced_credits: Decimal


def balance_of(session: Session, account_id: int, today: date) -> Balance:
    """The account's current balance and past-due amount on ``today``."""
    unpaid = list(
        session.execute(
            select(Invoice).where(Invoice.account_id == account_id, Invoice.status == "unpaid")
        ).scalars()
    )
    # Summed here, not in SQL: SQLite would add the amounts as binary floats.
    credits = session.execute(
        select(Credit.amount).where(
            Credit.account_id == account_id, Credit.invoice_id.is_(None), Credit.applied_on <= today
        )
    ).scalars()
    uninvoiced = sum((Decimal(amount) for amount in credits), ZERO).quantize(ZERO)
    past = [invoice for invoice in unpaid if invoice.due_date < today]
    return Balance(
        current=(sum((Decimal(i.total) for i in unpaid), ZERO) - uninvoiced).quantize(ZERO),
        past_due=sum((Decimal(i.total) for i in past), ZERO).quantize(ZERO),
        oldest_due=min((i.due_date for i in past), default=None),
        uninvoiced_credits=uninvoiced,
    )


def recent_credits(session: Session, account_id: int, limit: int = 5) -> list[Credit]:
    """The account's latest credits, newest first."""
    query = select(Credit).where(Credit.account_id == account_id).order_by(Credit.applied_on.desc()).limit(limit)
    return list(session.execute(query).scalars())


def invoice_number_of(session: Session, invoice_id: int | None) -> str | None:
    """The number of an invoice, by id."""
    if invoice_id is None:
        return None
    number: str | None = session.execute(select(Invoice.number).where(Invoice.id == invoice_id)).scalar_one_or_none()
    return number


class CdrAvailability(str, Enum):
    """Whether an invoice's call detail records can be exported."""

    AVAILABLE = "available"
    EXPIRED = "expired"  # older than 6 months
    BEFORE_JULY_2025 = "before_july_2025"  # the previous system: June spreadsheet, billed exports


def cdr_availability(invoice: Invoice, today: date) -> CdrAvailability:
    """The FAQ's rules for one invoice."""
    if invoice.period_start < NEW_CDR_SYSTEM_START:
        return CdrAvailability.BEFORE_JULY_2025
    if invoice.issue_date <= add_months(today, -CDR_RETENTION_MONTHS):
        return CdrAvailability.EXPIRED
    return CdrAvailability.AVAILABLE


def cdr_export_of(session: Session, invoice: Invoice) -> CdrExport | None:
    """The CDR export of one invoice, if the portal holds one."""
    export: CdrExport | None = session.execute(
        select(CdrExport).where(CdrExport.invoice_id == invoice.id)
    ).scalars().first()
    return export


def recent_payments(session: Session, account_id: int, limit: int = 3) -> list[Payment]:
    """The account's latest payments, newest first."""
    query = (
        select(Payment).where(Payment.account_id == account_id).order_by(Payment.submitted_at.desc()).limit(limit)
    )
    return list(session.execute(query).scalars())


def user_managers(session: Session, account_id: int) -> list[PortalUser]:
    """The account's users who may ask for user changes (Office Managers first, then admins)."""
    query = (
        select(PortalUser)
        .where(PortalUser.account_id == account_id, PortalUser.active.is_(True),
               PortalUser.role.in_(["office_manager", "admin"]))
        .order_by(PortalUser.role.desc(), PortalUser.name)
    )
    return list(session.execute(query).scalars())


def portal_user_by_email(session: Session, account_id: int, email: str) -> PortalUser | None:
    """One active user of the account, by email (case-insensitive)."""
    user: PortalUser | None = session.execute(
        select(PortalUser).where(
            PortalUser.account_id == account_id, func.lower(PortalUser.email) == email.lower(),
            PortalUser.active.is_(True),
        )
    ).scalars().first()
    return user


@dataclass(frozen=True)
class AccountSummary:
    """What an agent sees of a customer's account beside their ticket or chat."""

    id: int
    number: str
    name: str
    region: str
    language: str
    autopay: bool
    currency: str
    balance: Balance
    last_invoice: Invoice | None
    last_payment: Payment | None
    open_requests: list[AccountRequest]


def account_summary(session: Session, account_id: int, today: date) -> AccountSummary | None:
    """The account's name, region, language, balance and past due, last invoice and payment, open requests."""
    account: Account | None = session.get(Account, account_id)
    if account is None:
        return None
    invoices = recent_invoices(session, account_id, limit=1)
    payments = recent_payments(session, account_id, limit=1)
    requests = list(session.execute(
        select(AccountRequest).where(AccountRequest.account_id == account_id, AccountRequest.status == "open")
        .order_by(AccountRequest.id.desc()).limit(10)
    ).scalars())
    return AccountSummary(
        id=int(account.id), number=str(account.number), name=str(account.name), region=str(account.region),
        language=str(account.language), autopay=bool(account.autopay),
        currency="USD" if account.region == "US" else "CAD", balance=balance_of(session, account_id, today),
        last_invoice=invoices[0] if invoices else None, last_payment=payments[0] if payments else None,
        open_requests=requests,
    )
