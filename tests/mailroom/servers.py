"""Real mail servers on loopback for the tests: Dovecot (IMAP, installed from Debian when missing) and aiosmtpd.

Quirks of this machine kind (notes/test-servers.md): Dovecot's mail processes run as another user, so its
directory lives under /tmp with mode 0755 and the mail folders belong to that user; the port accepts
connections before Dovecot is ready, so readiness is its ``* OK`` greeting; PID 1 reaps no orphans, so Dovecot
runs in the foreground in its own process group and is stopped with SIGKILL to the group.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

from runner.harness import free_port

MAIL_UID = 65534  # nobody: Dovecot refuses to deliver as root


class ServerUnavailable(Exception):
    """Raised when a server cannot be installed or started here."""


def ensure_dovecot() -> None:
    """Install Dovecot from Debian's packages if it is missing (root, network to the Debian mirror)."""
    if shutil.which("dovecot"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "dovecot-imapd", "dovecot-core", "openssl"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise ServerUnavailable(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    if not shutil.which("dovecot"):
        raise ServerUnavailable("dovecot is still missing after apt-get install")


def wait_for_greeting(port: int, greeting: bytes, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                if connection.recv(256).startswith(greeting):
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling a server that is starting
    raise ServerUnavailable(f"no {greeting!r} greeting on port {port} within {timeout:.0f} s")


class TokenIssuer:
    """The OAuth2 provider's token introspection endpoint (RFC 7662) on loopback: the one part of an XOAUTH2 login
    that lives outside the mail server. Dovecot asks it whether a bearer token is active and whose it is."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}  # token -> username
        issuer = self

        class Introspection(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                token = (form.get("token") or [""])[0]
                user = issuer.tokens.get(token)
                body = json.dumps({"active": True, "username": user} if user else {"active": False}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Introspection)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def issue(self, user: str) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = user
        return token

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Dovecot:
    """A throwaway Dovecot: plain+STARTTLS on ``port``, implicit TLS on ``tls_port``; password logins, and XOAUTH2
    logins checked against ``issuer``."""

    root: Path
    port: int
    tls_port: int
    users: dict[str, str]
    issuer: TokenIssuer
    process: subprocess.Popen[bytes] | None = None
    ca_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ca_file = self.root / "cert.pem"

    @classmethod
    def start(cls, users: dict[str, str]) -> Dovecot:
        ensure_dovecot()
        root = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
        root.chmod(0o755)
        server = cls(root, free_port(), free_port(), users, TokenIssuer())
        server._configure()
        server._run()
        return server

    def _configure(self) -> None:
        root = self.root
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(root / "key.pem"),
             "-out", str(root / "cert.pem")],
            check=True, capture_output=True,
        )
        (root / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in self.users.items()))
        mail = root / "mail"
        for user in self.users:
            for sub in ("new", "cur", "tmp"):
                (mail / user / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        for path in [mail, *mail.rglob("*")]:
            os.chown(path, MAIL_UID, MAIL_UID)
        (root / "oauth2.conf.ext").write_text(
            f"introspection_mode = post\nintrospection_url = {self.issuer.url}\nforce_introspection = yes\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
        )
        (root / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_internal_user = root
default_login_user = dovenull
first_valid_uid = 1
auth_mechanisms = plain login xoauth2 oauthbearer
disable_plaintext_auth = no
mail_location = maildir:{mail}/%u/Maildir
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_UID} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
""")

    def _run(self) -> None:
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.root / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_greeting(self.port, b"* OK")
        except ServerUnavailable:
            log = (self.root / "dovecot.log").read_text() if (self.root / "dovecot.log").exists() else ""
            self.stop()
            raise ServerUnavailable(f"Dovecot did not start:\n{log[-2000:]}") from None

    def restart(self) -> None:
        """Kill and start again (the same mail, the same ports): a server that went away and came back."""
        self.kill()
        self._run()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        self.kill()
        self.issuer.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def deliver(self, user: str, raw: bytes, name: str | None = None) -> Path:
        """Put a message straight into a user's Maildir ``new/`` (as the MTA would)."""
        target = self.maildir(user) / "new" / (name or f"{time.time_ns()}.{os.getpid()}.test")
        temporary = self.maildir(user) / "tmp" / target.name
        temporary.write_bytes(raw)
        os.chown(temporary, MAIL_UID, MAIL_UID)
        os.rename(temporary, target)
        return target


class Recorder:
    """aiosmtpd handler that keeps every message it is given, after ``latency`` seconds (a real server takes a
    while to answer DATA: it stores the message, scans it)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.arrived = threading.Condition()
        self.latency = latency

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.latency:
            await asyncio.sleep(self.latency)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, list[str], EmailMessage]]:
        """Block until ``count`` messages arrived (or the timeout), then return them all."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd) on loopback that records what it receives."""

    port: int
    recorder: Recorder
    controller: Controller | None = None

    @classmethod
    def start(cls, port: int | None = None, latency: float = 0.0) -> SmtpServer:
        server = cls(port or free_port(), Recorder(latency))
        server.resume()
        return server

    def resume(self) -> None:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        wait_for_greeting(self.port, b"220")

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class CuttingProxy:
    """A TCP proxy that can drop the connection in the middle of a server response (a flaky network).

    ``arm(after_bytes)`` makes the next connection die once that many bytes went from the server to the client;
    later connections pass through.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cuts = 0
        self._armed: int | None = None
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, after_bytes: int) -> None:
        with self._lock:
            self._armed = after_bytes

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                limit, self._armed = self._armed, None
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[: max(limit - sent, 0)])
                    self.cuts += 1
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def close(self) -> None:
        self._running = False
        self._listener.close()
