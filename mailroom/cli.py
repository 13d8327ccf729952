"""The mailroom's command line: ``python -m mailroom {daemon,once,tickets,triage}``.

- ``daemon``: watch the configured mailboxes (IMAP IDLE, or the local Maildir) and send the outbox, until stopped.
- ``once``: one pass over every mailbox and the outbox, then exit.
- ``tickets [--json] [--limit N]``: list the latest tickets.
- ``outbox [--json] [--all]``: the mail not (yet) sent: pending, sending, in doubt, failed, suppressed.
- ``triage FILE.eml``: triage one message offline and print one JSON object (nothing is stored or sent).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError
from core.settings import Settings
from mailroom.context import TriageContext
from mailroom.parse import recipients_of, team_of_recipients


def one_line_json(value: dict[str, Any]) -> str:
    """JSON on exactly one line: the Unicode line separators JSON allows raw inside strings are escaped too."""
    text = json.dumps(value, ensure_ascii=False)
    for separator in ("\u2028", "\u2029", "\x85"):
        text = text.replace(separator, f"\\u{ord(separator):04x}")
    return text


def triage_file(raw: bytes, context: TriageContext, settings: Settings) -> dict[str, Any]:
    """The triage report of one raw message (the team from its recipients); never raises for a bad message."""
    from mailroom.errors import PermanentMailError
    from mailroom.mail import Mail
    from mailroom.pipeline import report, triage

    team = team_of_recipients(recipients_of(raw), settings)
    mail = Mail(raw=raw, team=team, mailbox=team.lower())
    try:
        triage(mail, context, settings.mail_size_limit_mb * 1024 * 1024)
        return report(mail)
    except PermanentMailError as error:
        return {"language": None, "queue": None, "priority": None, "automated": None, "misroute": "none",
                "misroute_confidence": 0.0, "reasons": [f"quarantined: {error}"], "acknowledge": False,
                "text": "", "error": str(error)}


def command_triage(settings: Settings, path: Path) -> int:
    from core.db.engine import make_engine, make_session_factory

    try:
        raw = path.read_bytes()
    except OSError as error:
        print(one_line_json({"error": f"cannot read {path}: {error.strerror}"}))
        return 2
    engine = make_engine(settings.database_url) if _store_exists(settings) else None
    session = make_session_factory(engine)() if engine is not None else None
    try:
        context = TriageContext.build(settings, session)
        print(one_line_json(triage_file(raw, context, settings)))
        return 0
    finally:
        if session is not None:
            session.rollback()  # offline triage never writes
            session.close()
        if engine is not None:
            engine.dispose()


def _store_exists(settings: Settings) -> bool:
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url[len("sqlite:///"):]).exists()
    return True


def command_tickets(settings: Settings, as_json: bool, limit: int) -> int:
    from core.db.engine import make_engine, make_session_factory
    from core.tickets import latest_tickets

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = latest_tickets(session, limit)
    finally:
        engine.dispose()
    if as_json:
        for row in rows:
            print(one_line_json({k: str(v) if v is not None else None for k, v in row.items()}))
        return 0
    columns = ("reference", "created", "team", "queue", "priority", "language", "misroute", "customer", "subject")
    print_table(rows, columns, {"subject": 50}, "(no tickets yet)")
    return 0


OUTBOX_COLUMNS = ("id", "state", "kind", "ticket", "recipient", "attempts", "doubts", "next_attempt_at", "last_error")


def command_outbox(settings: Settings, as_json: bool, include_sent: bool, limit: int) -> int:
    from core.db.engine import make_engine, make_session_factory
    from core.outbox import problem_rows

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = problem_rows(session, limit, include_sent)
    finally:
        engine.dispose()
    if as_json:
        for row in rows:
            print(one_line_json(row))
        return 0
    print_table(rows, OUTBOX_COLUMNS, {"recipient": 36, "next_attempt_at": 19, "last_error": 60},
                "(nothing waiting: every mail was sent)")
    return 0


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...], caps: dict[str, int], empty: str) -> None:
    """Rows as aligned columns (values cut to ``caps``), or ``empty`` when there are none."""
    def cell(row: dict[str, Any], column: str) -> str:
        value = row[column]
        return " ".join(str(value).split()) if value is not None else "-"

    widths = {c: min(max([len(c)] + [len(cell(r, c)) for r in rows]), caps.get(c, 1000)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(cell(row, c)[: widths[c]].ljust(widths[c]) for c in columns).rstrip())
    if not rows:
        print(empty)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailroom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("daemon", help="watch the mailboxes and send the outbox until stopped")
    commands.add_parser("once", help="one pass over the mailboxes and the outbox")
    tickets = commands.add_parser("tickets", help="list the latest tickets")
    tickets.add_argument("--json", action="store_true", help="one JSON object per line")
    tickets.add_argument("--limit", type=int, default=20)
    outbox = commands.add_parser("outbox", help="list the mail not yet sent (pending, in doubt, failed, suppressed)")
    outbox.add_argument("--json", action="store_true", help="one JSON object per line")
    outbox.add_argument("--all", action="store_true", help="sent mail too")
    outbox.add_argument("--limit", type=int, default=200)
    triage = commands.add_parser("triage", help="triage one .eml file offline, print JSON")
    triage.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigurationError as error:  # a bad setting or secret: say which, and what to do; no traceback
        print(f"mailroom: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.command == "outbox":
        return command_outbox(settings, args.json, args.all, args.limit)
    if args.command == "triage":
        logging.disable(logging.CRITICAL)  # stdout is the JSON object and nothing else
        return command_triage(settings, args.file)
    if args.command == "tickets":
        return command_tickets(settings, args.json, args.limit)
    from mailroom.service import run_forever, run_once

    from core.redaction import install_log_redaction

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    if args.command == "once":
        return run_once(settings)
    return run_forever(settings)


if __name__ == "__main__":
    sys.exit(main())
