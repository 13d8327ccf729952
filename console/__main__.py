"""The console's command line: ``python -m console {serve,agent-add,demo-agents}``.

- ``serve``: the console on ``BILLING_CONSOLE_HOST:BILLING_CONSOLE_PORT`` under gunicorn (threads: a live page
  holds one), what ``make run`` starts.
- ``agent-add --email E --name N --team CA [--role agent] [--languages en,fr]``: create an agent and print the
  generated password, once.
- ``demo-agents``: one JSON object per demo agent (email, password, team, role, language).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.errors import ConfigurationError
from core.settings import Settings


def serve(settings: Settings) -> int:
    """Run the console under gunicorn (replaces this process)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    arguments = [
        str(gunicorn), "--bind", f"{settings.console_host}:{settings.console_port}",
        "--worker-class", "gthread", "--workers", str(settings.console_workers),
        "--threads", str(settings.console_threads), "--timeout", "60", "--graceful-timeout", "10",
        "--keep-alive", "30",  # (a page and a widget call every few seconds: keep their connections open)
        "--access-logfile", "-", "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "--forwarded-allow-ips", "127.0.0.1" if settings.trusted_proxies else "",
        "console.wsgi:app",
    ]
    os.execv(str(gunicorn), arguments)


def agent_add(settings: Settings, args: argparse.Namespace) -> int:
    from core.agents import AgentError, create_agent
    from core.db.engine import make_engine, make_session_factory, unit_of_work
    from core.db.migrate import upgrade

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            agent, password = create_agent(session, args.email, args.name, args.team, args.role, args.languages)
            email = str(agent.email)
    except AgentError as error:
        print(f"agent-add: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"agent {email} created; password (shown once): {password}")
    return 0


def demo_agents(settings: Settings) -> int:
    from core.agents import demo_agents as records

    for record in records(settings.var_dir):
        print(json.dumps({key: record[key] for key in ("email", "password", "team", "role", "language")},
                         ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the console (gunicorn)")
    add = commands.add_parser("agent-add", help="create an agent; prints the generated password once")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--team", required=True, help="CA, US or CA,US")
    add.add_argument("--role", default="agent", help="agent or supervisor")
    add.add_argument("--languages", default="en,fr", help="the languages they work in: en, fr or en,fr")
    commands.add_parser("demo-agents", help="the demo agents, one JSON object per line")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return serve(settings)
        if args.command == "agent-add":
            return agent_add(settings, args)
        return demo_agents(settings)
    except ConfigurationError as error:
        print(f"console: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
