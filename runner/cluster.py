"""``make cluster``: every service as several replicas on one machine, behind HAProxy, on PostgreSQL and Redis.

The same processes as ``make run`` (the same commands, the same code), with other settings:

- HAProxy listens on the public ports of ``make run`` (Rasa 5005, actions 5055, console 5080) and spreads the
  requests over the replicas, which listen on the public port + 100 × their number (Rasa 5105, 5205...). It checks
  each replica every second and takes out one that stops answering; a request that cannot reach a replica is
  sent to another. Each Rasa server takes ``RASA_CONNECTIONS`` requests at a time; the others wait in HAProxy's
  queue, and a request that would wait too long (``BUSY_QUEUE_SECONDS``, or more than ``BUSY_QUEUE_DEPTH``
  waiting per server) is answered at once "503 busy" with ``Retry-After``.
- The Rasa servers share conversations through the PostgreSQL tracker store and a Redis lock store
  (``bot.lock_store.ClusterLockStore``): one conversation's messages are answered one at a time, in order,
  whichever server gets them.
- The consoles share their sessions (one signing key) and their live updates (PostgreSQL LISTEN/NOTIFY).
- The mailroom workers share the mailboxes: each mailbox is worked by one worker at a time, the others stand by.

A replica that stops is started again, as ``make run`` does. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from core.errors import ConfigurationError
from core.files import write_atomic
from core.settings import PROJECT_ROOT, Settings
from runner.processes import LaunchError, Service, ensure_port_free, start, stop, wait_until_ready, write_pid_file
from runner.services import action_server, console_server, mailroom_worker, rasa_server, write_endpoints
from runner.supervise import supervise

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/billing"
REPLICA_PORT_STEP = 100  # replica i (from 1) of a service listens on the service's public port + 100 × i
RASA_CONNECTIONS = 6  # requests one Rasa server works on at once (more only queue inside it, out of HAProxy's sight)
BUSY_QUEUE_SECONDS = 5  # a request waiting longer than this in HAProxy's queue is answered "503 busy"
BUSY_QUEUE_DEPTH = 100  # ... and one arriving when more than this many wait per Rasa server, at once
RETRY_AFTER_SECONDS = 2
BUSY_BODY = ('{"error": "busy", "retry_after": %d, "message": "The assistant is busy: please retry in a few seconds. '
             "L'assistant est occupé : veuillez réessayer dans quelques secondes.\"}" % RETRY_AFTER_SECONDS)


def _stop_requested(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cluster_settings(environ: dict[str, str]) -> Settings:
    """The settings of a cluster: those of ``make run``, on PostgreSQL (``DEFAULT_DATABASE_URL`` unless
    ``DATABASE_URL`` names another); SQLite is refused, a file cannot be shared by several machines."""
    env = dict(environ)
    env.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    settings = Settings.from_env(env)
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise ConfigurationError(f"DATABASE_URL={settings.database_url}: make cluster runs on PostgreSQL "
                                 f"(e.g. {DEFAULT_DATABASE_URL}); SQLite is for `make run` only")
    for name in ("rasa_port", "action_port", "console_port"):
        if getattr(settings, name) + REPLICA_PORT_STEP * 16 > 65535:
            raise ConfigurationError(f"BILLING_{name.upper()}={getattr(settings, name)}: the replicas listen on "
                                     f"it + {REPLICA_PORT_STEP} × their number; choose a port below "
                                     f"{65535 - REPLICA_PORT_STEP * 16}")
    return settings


def replica_port(public_port: int, number: int) -> int:
    """Where replica ``number`` (from 1) of the service on ``public_port`` listens."""
    return public_port + REPLICA_PORT_STEP * number


def ensure_database(url: str) -> None:
    """Create the database of ``url`` if its server lacks it; a server that cannot be reached is said so."""
    target = make_url(url)
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": target.database}).first()
            if exists is None:
                connection.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
                print(f"created the database {target.database}", flush=True)
    except sa.exc.OperationalError as error:
        raise LaunchError(f"PostgreSQL at {target.render_as_string(hide_password=True)} cannot be reached "
                          f"({str(error.orig).strip().splitlines()[0]}). Start it, or point DATABASE_URL at one.")
    finally:
        engine.dispose()


def ensure_redis(url: str) -> None:
    """Raise ``LaunchError`` unless the Redis server of ``url`` answers."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=3)
    except ValueError as error:
        raise LaunchError(f"REDIS_URL={url}: {error} (redis://host:port/db)")
    try:
        client.ping()
    except redis.RedisError as error:
        raise LaunchError(f"Redis at {url} does not answer ({error}). Start it, or point REDIS_URL at one.")
    finally:
        client.close()


def prepare_store(env: dict[str, str]) -> None:
    """Migrate the database and seed the demo accounts when it has none (``make db`` on the cluster's store)."""
    for module in (["core.db.migrate", "upgrade"], ["core.demo", "seed"]):
        result = subprocess.run([sys.executable, "-m", *module], cwd=PROJECT_ROOT, env=env, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise LaunchError(f"{' '.join(module)} failed:\n{result.stdout}{result.stderr}")


def cluster_endpoints(settings: Settings, directory: Path) -> Path:
    """The Rasa servers' ``endpoints.yml``: actions through HAProxy, conversations locked in Redis."""
    return write_endpoints(settings, directory, {"type": "bot.lock_store.ClusterLockStore", "url": settings.redis_url})


def haproxy_config(settings: Settings, directory: Path) -> str:
    """HAProxy's configuration for the replicas of ``settings``."""
    busy_body = write_atomic(directory / "busy.json", BUSY_BODY + "\n")
    busy = directory / "busy.http"
    write_atomic(busy, (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        f"Retry-After: {RETRY_AFTER_SECONDS}\r\nCache-Control: no-store\r\nConnection: close\r\n"
                        f"\r\n{BUSY_BODY}\n"))

    def servers(name: str, public_port: int, count: int, limits: str) -> str:
        return "\n".join(f"    server {name}{n} 127.0.0.1:{replica_port(public_port, n)} check {limits}"
                         for n in range(1, count + 1))

    rasa_depth = BUSY_QUEUE_DEPTH * settings.rasa_replicas
    return f"""# Written by runner/cluster.py (`make cluster` at each start, or its write-config): change that, not this.
global
    maxconn 4096
    log stdout format raw local0 notice
    stats socket {directory / "haproxy.sock"} mode 600 level admin

defaults
    mode http
    log global
    option dontlognull
    timeout connect 2s
    timeout http-request 10s
    timeout client 60s
    timeout server 60s
    timeout queue {BUSY_QUEUE_SECONDS}s
    retries 3
    option redispatch 1
    # Checked every second; a connection refused (the process died) takes the server out at once.
    default-server inter 1s fastinter 500ms downinter 1s rise 2 fall 2 observe layer4 error-limit 1 on-error mark-down
    errorfiles busy

http-errors busy
    errorfile 503 {busy}

frontend chat
    bind {settings.rasa_host}:{settings.rasa_port}
    http-request return status 503 content-type application/json hdr Retry-After {RETRY_AFTER_SECONDS} file {busy_body} if {{ queue(rasa) gt {rasa_depth} }}
    # Each request's id, kept on its retries: the message's id when its client gave none (bot/answer_once.py).
    unique-id-format %{{+X}}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
    http-request set-header X-Request-Id %[unique-id]
    default_backend rasa

backend rasa
    # The whole request is read before it is sent (http-buffer-request): the conversation is found in its body,
    # and HAProxy can send it again once its body has gone.
    option http-buffer-request
    # Each conversation to the same server while that server is up: the server keeps its tracker between
    # messages (bot/tracker_store.py). Consistent hashing moves only a dead server's conversations, and a server
    # with more than 1.5 times its share of requests in hand passes new ones on.
    http-request set-var(txn.sender) req.body,json_query('$.sender')
    balance hash var(txn.sender)
    hash-type consistent
    hash-balance-factor 150
    # A request whose server died before answering anything goes to another. A message the first server had
    # stored is not handled twice: the conversation holds its id.
    retry-on conn-failure empty-response
    timeout server 30s
    option httpchk GET /
    http-check expect status 200
{servers("rasa", settings.rasa_port, settings.rasa_replicas, f"maxconn {RASA_CONNECTIONS}")}

frontend actions
    bind {settings.action_host}:{settings.action_port}
    default_backend actions

backend actions
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
{servers("actions", settings.action_port, settings.action_replicas, "maxconn 32")}

frontend console
    bind {settings.console_host}:{settings.console_port}
    option forwardfor
    default_backend console

backend console
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers("console", settings.console_port, settings.console_replicas, f"maxconn {settings.console_threads}")}

listen stats
    bind 127.0.0.1:{settings.haproxy_stats_port}
    monitor-uri /healthz
    stats enable
    stats uri /
    stats refresh 5s
"""


def haproxy_binary() -> str:
    """HAProxy's path; ``make cluster`` installs Debian's package when it is missing."""
    for candidate in (os.environ.get("HAPROXY", ""), "/usr/sbin/haproxy", "/usr/local/sbin/haproxy"):
        if candidate and Path(candidate).exists():
            return candidate
    raise LaunchError("HAProxy is not installed: `make cluster` installs it (apt-get install haproxy), "
                      "or point HAPROXY at its binary")


def services_for(settings: Settings, directory: Path) -> list[Service]:
    """Every replica, then HAProxy in front of them."""
    endpoints = cluster_endpoints(settings, directory)
    config = write_atomic(directory / "haproxy.cfg", haproxy_config(settings, directory))
    check = subprocess.run([haproxy_binary(), "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise LaunchError(f"HAProxy refused {config}:\n{check.stdout}{check.stderr}")
    services: list[Service] = []
    for n in range(1, settings.action_replicas + 1):
        services.append(action_server(settings, f"actions{n}", replica_port(settings.action_port, n)))
    for n in range(1, settings.rasa_replicas + 1):
        services.append(rasa_server(settings, endpoints, f"rasa{n}", replica_port(settings.rasa_port, n)))
    for n in range(1, settings.console_replicas + 1):
        services.append(console_server(settings, f"console{n}", replica_port(settings.console_port, n),
                                       trusted_proxies=settings.trusted_proxies + 1))
    for n in range(1, settings.mailroom_replicas + 1):
        services.append(mailroom_worker(f"mailroom{n}"))
    services.append(Service(name="haproxy", command=[haproxy_binary(), "-db", "-W", "-f", str(config)],
                            health_url=f"http://127.0.0.1:{settings.haproxy_stats_port}/healthz",
                            host="127.0.0.1", port=settings.haproxy_stats_port))
    return services


def listening(settings: Settings) -> str:
    """Where everything listens, for the person who started the cluster."""
    def replicas(port: int, count: int) -> str:
        return ", ".join(str(replica_port(port, n)) for n in range(1, count + 1))

    rest = f"http://{settings.rasa_host}:{settings.rasa_port}/webhooks/rest/webhook"
    return (
        f"  chat (Rasa)     http://{settings.rasa_host}:{settings.rasa_port}  (REST {rest})  "
        f"-> {settings.rasa_replicas} Rasa servers on {replicas(settings.rasa_port, settings.rasa_replicas)}\n"
        f"  action servers  http://{settings.action_host}:{settings.action_port}/webhook  "
        f"-> {replicas(settings.action_port, settings.action_replicas)}\n"
        f"  agent console   http://{settings.console_host}:{settings.console_port}/  "
        f"-> {replicas(settings.console_port, settings.console_replicas)}  (sign-ins: make -s demo-agents)\n"
        f"  support page    http://{settings.console_host}:{settings.console_port}/support  (?lang=fr in French)\n"
        f"  mailroom        {settings.mailroom_replicas} workers, one owner per mailbox\n"
        f"  HAProxy stats   http://127.0.0.1:{settings.haproxy_stats_port}/\n"
        f"  database        {make_url(settings.database_url).render_as_string(hide_password=True)}\n"
        f"  lock store      {settings.redis_url}\n"
        f"try:  curl -s {rest} -d '{{\"sender\":\"me\",\"message\":\"quelles cartes acceptez-vous\"}}'\n"
        f"Ctrl-C stops everything."
    )


def write_config(directory: Path) -> int:
    """``python -m runner.cluster write-config DIR``: HAProxy's configuration and the Rasa servers' endpoints for
    the settings of the environment, written into ``DIR`` (for a deployment under systemd: docs/deployment.md)."""
    try:
        settings = cluster_settings(dict(os.environ))
    except ConfigurationError as error:
        print(f"write-config: {error}", file=sys.stderr)
        return 2
    directory.mkdir(parents=True, exist_ok=True)
    cluster_endpoints(settings, directory)
    write_atomic(directory / "haproxy.cfg", haproxy_config(settings, directory))
    print(f"wrote {directory / 'haproxy.cfg'} (with busy.http and busy.json beside it) and {directory / 'endpoints.yml'}")
    return 0


def main() -> int:
    if sys.argv[1:2] == ["write-config"]:
        if len(sys.argv) != 3:
            print("usage: python -m runner.cluster write-config DIRECTORY", file=sys.stderr)
            return 2
        return write_config(Path(sys.argv[2]))
    try:
        settings = cluster_settings(dict(os.environ))
        settings.signing_secret()
        settings.session_secret()  # every console replica signs with this one
    except ConfigurationError as error:
        print(f"make cluster: {error}", file=sys.stderr)
        return 2
    if not settings.model_path.exists():
        print(f"make cluster: no trained model at {settings.model_path}; run `make train`.", file=sys.stderr)
        return 2
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), SQLALCHEMY_SILENCE_UBER_WARNING="1",
               RASA_TELEMETRY_ENABLED="false",
               DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url)
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    directory = settings.var_dir / "cluster"
    log_dir = settings.var_dir / "log"
    services: list[Service] = []
    try:
        ensure_database(settings.database_url)
        ensure_redis(settings.redis_url)
        prepare_store(env)
        services = services_for(settings, directory)
        for service in services:
            if service.port is not None:
                ensure_port_free(service.host or "127.0.0.1", service.port, f"the port of {service.name}")
        for port, setting in ((settings.rasa_port, "BILLING_RASA_PORT"), (settings.action_port, "BILLING_ACTION_PORT"),
                              (settings.console_port, "BILLING_CONSOLE_PORT")):
            ensure_port_free("127.0.0.1", port, setting)
        began = time.monotonic()
        print(f"starting {len(services)} processes (logs: {log_dir}/<name>.log)...", flush=True)
        for service in services:  # all at once: the Rasa servers load their models side by side
            start(service, env, PROJECT_ROOT, log_dir)
            write_pid_file(service, settings.var_dir / "run")
        for service in services:
            wait_until_ready(service)
        print(f"\nready in {time.monotonic() - began:.0f} s\n{listening(settings)}", flush=True)
        supervise(services, env, log_dir, settings.var_dir / "run")
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        stop(services)
        print("stopped.", flush=True)
        return 0
    except LaunchError as error:
        stop(services)
        print(f"make cluster: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
