"""Deterministic demo data, relative to today: Canadian (and one US) accounts with 30 months of invoices, and
the demo agents of the console (``core.agents``). Nothing is dated after today.

Every FAQ boundary is exercised: invoice PDFs older than 24 months, CDR exports older than 6 months, invoices
before July 2025, a credit applied after the last invoice (not yet in the Transaction History), a pending payment,
a declined payment, a past-due account with Auto Pay, Office Managers, admins and regular users, English and French.
The same ``today`` always gives the same data.

Command line: ``python -m core.demo seed`` (only into an empty store), ``python -m core.demo users`` (one JSON
object per demo portal user: what ``make -s demo-users`` prints).
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.accounts import NEW_CDR_SYSTEM_START, balance_of, recent_invoices
from core.agents import seed_demo_agents
from core.dates import add_months
from core.db.engine import make_engine, make_session_factory, unit_of_work
from core.db.models import Account, BillingContact, CdrExport, Credit, Invoice, Payment, PortalUser, Ticket
from core.files import write_atomic
from core.settings import Settings

MONTHS_OF_HISTORY = 30
DUE_AFTER_DAYS = 20
CENT = Decimal("0.01")

# Sales taxes by province (and the US state we bill): (GST, HST, QST, PST) rates.
TAX_RATES: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {
    "QC": (Decimal("0.05"), Decimal("0"), Decimal("0.09975"), Decimal("0")),
    "ON": (Decimal("0"), Decimal("0.13"), Decimal("0"), Decimal("0")),
    "BC": (Decimal("0.05"), Decimal("0"), Decimal("0"), Decimal("0.07")),
    "TX": (Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0.0825")),
}


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str
    language: str


@dataclass(frozen=True)
class DemoAccount:
    """One demo account and the situation it illustrates."""

    number: str
    name: str
    region: str
    language: str
    autopay: bool
    street: str
    city: str
    province: str
    postal_code: str
    time_zone: str
    monthly: Decimal
    card: tuple[str, str]  # method, last four digits
    users: tuple[DemoUser, ...]
    contacts: tuple[str, ...] = ()
    unpaid_latest: int = 0  # how many of the latest invoices are unpaid
    declined_autopay: bool = False  # Auto Pay charges of the unpaid invoices were declined
    pending_latest: bool = False  # a payment of the latest invoice is still pending
    credit_after_last_invoice: Decimal | None = None
    credits_on_invoices: tuple[tuple[int, Decimal, str], ...] = field(default=())  # (months back, amount, reason)


ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        number="CA-100231", name="Boulangerie Tremblay inc.", region="CA", language="fr", autopay=True,
        street="4520, rue Saint-Denis", city="Montréal", province="QC", postal_code="H2J 2L3",
        time_zone="America/Toronto", monthly=Decimal("184.50"), card=("visa", "4242"),
        users=(
            DemoUser("marie.tremblay@boulangerietremblay.ca", "Marie Tremblay", "office_manager", "fr"),
            DemoUser("luc.bergeron@boulangerietremblay.ca", "Luc Bergeron", "regular", "fr"),
        ),
        contacts=("comptabilite@boulangerietremblay.ca",),
        credit_after_last_invoice=Decimal("25.00"),
        credits_on_invoices=((4, Decimal("15.00"), "Crédit de service : panne du 3"),),
    ),
    DemoAccount(
        number="CA-100487", name="Maple Leaf Dental Clinic", region="CA", language="en", autopay=False,
        street="250 Bloor Street West, Suite 410", city="Toronto", province="ON", postal_code="M5S 1V8",
        time_zone="America/Toronto", monthly=Decimal("312.00"), card=("mastercard", "5454"),
        users=(
            DemoUser("priya.shah@mapleleafdental.ca", "Priya Shah", "office_manager", "en"),
            DemoUser("tom.wilson@mapleleafdental.ca", "Tom Wilson", "admin", "en"),
            DemoUser("jenny.park@mapleleafdental.ca", "Jenny Park", "regular", "fr"),
        ),
        contacts=("accounts@mapleleafdental.ca", "priya.shah@mapleleafdental.ca"),
        credits_on_invoices=((2, Decimal("40.00"), "Service credit: porting delay"),),
    ),
    DemoAccount(
        number="CA-100902", name="Les Entreprises Gagnon", region="CA", language="fr", autopay=True,
        street="1200, boulevard Charest Ouest", city="Québec", province="QC", postal_code="G1N 2E2",
        time_zone="America/Toronto", monthly=Decimal("96.75"), card=("visa_debit", "0113"),
        users=(
            DemoUser("jean.gagnon@entreprisesgagnon.qc.ca", "Jean Gagnon", "office_manager", "fr"),
            DemoUser("sophie.roy@entreprisesgagnon.qc.ca", "Sophie Roy", "regular", "en"),
        ),
        unpaid_latest=2, declined_autopay=True,
    ),
    DemoAccount(
        number="CA-101356", name="Pacific Coast Logistics Ltd.", region="CA", language="en", autopay=False,
        street="1055 West Georgia Street", city="Vancouver", province="BC", postal_code="V6E 3P3",
        time_zone="America/Vancouver", monthly=Decimal("1250.00"), card=("amex", "1005"),
        users=(
            DemoUser("daniel.chen@pacificcoastlogistics.com", "Daniel Chen", "office_manager", "en"),
            DemoUser("amelie.cote@pacificcoastlogistics.com", "Amélie Côté", "regular", "fr"),
        ),
        unpaid_latest=1, pending_latest=True,
    ),
    DemoAccount(
        number="US-200118", name="Sunbelt Roofing LLC", region="US", language="en", autopay=True,
        street="4100 Commerce Street", city="Dallas", province="TX", postal_code="75226",
        time_zone="America/Chicago", monthly=Decimal("142.00"), card=("discover", "6011"),
        users=(DemoUser("mike.johnson@sunbeltroofing.com", "Mike Johnson", "office_manager", "en"),),
    ),
)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=timezone.utc)


def _invoice_amounts(account: DemoAccount, months_back: int) -> tuple[Decimal, ...]:
    """Subtotal and taxes of one month: the plan plus usage varying by a deterministic few percent."""
    rng = random.Random(f"{account.number}-{months_back}")
    subtotal = _money(account.monthly * Decimal(str(1 + rng.uniform(-0.04, 0.09))))
    gst, hst, qst, pst = (_money(subtotal * rate) for rate in TAX_RATES[account.province])
    return subtotal, gst, hst, qst, pst


def _seed_account(session: Session, spec: DemoAccount, today: date) -> None:
    account = Account(
        number=spec.number, name=spec.name, region=spec.region, language=spec.language, autopay=spec.autopay,
        bill_to_name=spec.name, street=spec.street, city=spec.city, province=spec.province,
        postal_code=spec.postal_code, time_zone=spec.time_zone,
    )
    session.add(account)
    session.flush()
    for user in spec.users:
        session.add(PortalUser(account_id=account.id, email=user.email, name=user.name, role=user.role,
                               language=user.language, active=True))
    for email in spec.contacts or (spec.users[0].email,):
        session.add(BillingContact(account_id=account.id, email=email, notifications=True))
    credits_by_month = {back: (amount, reason) for back, amount, reason in spec.credits_on_invoices}
    method, last4 = spec.card
    this_month = today.replace(day=1)
    for back in range(MONTHS_OF_HISTORY - 1, -1, -1):
        issued = add_months(this_month, -back)
        period_end = add_months(issued, 1) - timedelta(days=1)
        subtotal, gst, hst, qst, pst = _invoice_amounts(spec, back)
        credit_amount, credit_reason = credits_by_month.get(back, (Decimal("0.00"), ""))
        total = _money(subtotal + gst + hst + qst + pst - credit_amount)
        number = f"INV-{issued:%Y%m}-{spec.number[-4:]}"
        due = issued + timedelta(days=DUE_AFTER_DAYS)
        paid_on = due if spec.autopay else issued + timedelta(days=6 + back % 5)
        # Nothing is dated after today: an invoice whose payment day has not come yet is simply not paid yet.
        unpaid = back < spec.unpaid_latest or paid_on > today
        invoice = Invoice(
            account_id=account.id, number=number, period_start=issued, period_end=period_end, issue_date=issued,
            due_date=due, subtotal=subtotal, gst=gst, hst=hst, qst=qst, pst=pst, credits_applied=credit_amount,
            total=total, status="unpaid" if unpaid else "paid", pdf_ref=f"documents/invoices/{number}.pdf",
        )
        session.add(invoice)
        session.flush()
        if credit_amount:
            session.add(Credit(account_id=account.id, amount=credit_amount, reason=credit_reason,
                               applied_on=add_months(issued, -1) + timedelta(days=17), invoice_id=invoice.id))
        if issued >= NEW_CDR_SYSTEM_START:
            session.add(CdrExport(invoice_id=invoice.id, period_start=issued, period_end=period_end,
                                  link=f"documents/cdr/{number}.csv"))
        if not unpaid:
            session.add(Payment(account_id=account.id, invoice_id=invoice.id, amount=total, method=method,
                                card_last4=last4, status="accepted", autopay=spec.autopay,
                                submitted_at=_at(paid_on, 14), processed_at=_at(paid_on, 16)))
        elif spec.declined_autopay and due < today:
            session.add(Payment(account_id=account.id, invoice_id=invoice.id, amount=total, method=method,
                                card_last4=last4, status="declined", autopay=True, decline_reason="expired_card",
                                submitted_at=_at(due, 5), processed_at=_at(due, 5)))
        elif spec.pending_latest and back == 0:
            submitted = max(issued, today - timedelta(days=1))
            session.add(Payment(account_id=account.id, invoice_id=invoice.id, amount=total, method=method,
                                card_last4=last4, status="pending", autopay=False, submitted_at=_at(submitted, 15)))
    if spec.credit_after_last_invoice is not None:
        applied = max(this_month, today - timedelta(days=3))
        session.add(Credit(account_id=account.id, amount=spec.credit_after_last_invoice,
                           reason="Crédit de service : interruption du service" if spec.language == "fr"
                           else "Service credit: service interruption", applied_on=applied, invoice_id=None))


def seed(factory: sessionmaker[Session], today: date) -> int:
    """Create the demo accounts in an empty store; returns how many were created (0 if any account exists)."""
    with unit_of_work(factory) as session:
        if session.execute(select(func.count()).select_from(Account)).scalar_one():
            return 0
        for spec in ACCOUNTS:
            _seed_account(session, spec, today)
    return len(ACCOUNTS)


DEMO_MAIL = Path(__file__).resolve().parent.parent / "demo" / "mail"
DEMO_MAIL_MARKER = "demo_mail_delivered"


def deliver_demo_mail(factory: sessionmaker[Session], settings: Settings) -> int:
    """On a first run of the embedded mailroom (no ticket yet), put the demo mail into its Maildir's ``new/``, as
    an MTA would: the mailroom then reads it through its whole pipeline. Once only (a marker in ``var/``)."""
    marker = settings.var_dir / DEMO_MAIL_MARKER
    if settings.mailroom_config is not None or marker.exists():
        return 0
    with factory() as session:
        if session.execute(select(func.count()).select_from(Ticket)).scalar_one():
            return 0
    inbox = settings.mail_dir / "inbox"
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    files = sorted(DEMO_MAIL.glob("*.eml"))
    for path in files:
        temporary = inbox / "tmp" / f"demo-{path.name}"
        temporary.write_bytes(path.read_bytes())
        os.replace(temporary, inbox / "new" / f"demo-{path.name}")
    write_atomic(marker, f"{len(files)} demo mails delivered to {inbox / 'new'}\n")
    return len(files)


def demo_users(session: Session, today: date) -> list[dict[str, str]]:
    """Each demo portal user with their account's last invoice and balance (decimal strings)."""
    rows = []
    for spec in ACCOUNTS:
        account = session.execute(select(Account).where(Account.number == spec.number)).scalars().first()
        if account is None:
            continue
        [last] = recent_invoices(session, account.id, limit=1)
        balance = balance_of(session, account.id, today)
        for user in spec.users:
            rows.append({
                "email": user.email, "account": spec.number, "role": user.role, "language": user.language,
                "last_invoice": str(last.number), "last_invoice_total": f"{Decimal(str(last.total)):.2f}",
                "balance": f"{balance.current:.2f}",
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "users"
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    today = date.today()
    try:
        if command == "seed":
            created = seed(factory, today)
            print(f"demo data: {created} accounts created" if created else "demo data: the store already has accounts")
            with unit_of_work(factory) as session:
                agents = seed_demo_agents(session, settings.var_dir)
            if agents:
                print(f"demo agents: {agents} created (make -s demo-agents lists their sign-ins)")
            mails = deliver_demo_mail(factory, settings)
            if mails:
                print(f"demo mail: {mails} customer mails in {settings.mail_dir / 'inbox' / 'new'} for the mailroom")
        elif command == "users":
            with factory() as session:
                users = demo_users(session, today)
            if not users:
                print("no demo data: run `make db` (or `make run`) first", file=sys.stderr)
                return 1
            for user in users:
                print(json.dumps(user, ensure_ascii=False))
        else:
            print(f"unknown command {command!r}; expected seed or users", file=sys.stderr)
            return 2
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
