"""``make run``'s launcher: it refuses to start with a clear message when a piece is missing or a port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.settings import PROJECT_ROOT, Settings
from runner.supervise import RESTARTS_ALLOWED, supervise
from runner.harness import stack_environment
from runner.processes import LaunchError, Service, ensure_port_free, start, wait_until_ready
from runner.services import write_endpoints


def run_runner(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_port_in_use_is_named_with_the_setting_to_change() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LaunchError, match=f"port {port} .* BILLING_RASA_PORT=<port> make run"):
            ensure_port_free("127.0.0.1", port, "BILLING_RASA_PORT")


def test_the_launcher_stops_when_its_port_is_taken(tmp_path: Path, trained_model: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = stack_environment(tmp_path, BILLING_RASA_PORT=str(busy.getsockname()[1]), BILLING_MODEL_PATH=str(trained_model))
        result = run_runner(env)
    assert result.returncode == 1
    assert "is already in use" in result.stderr and "BILLING_RASA_PORT" in result.stderr


def test_the_launcher_says_how_to_get_a_missing_model(tmp_path: Path) -> None:
    result = run_runner(stack_environment(tmp_path, BILLING_MODEL_PATH=str(tmp_path / "none.tar.gz")))
    assert result.returncode == 2
    assert "no trained model" in result.stderr and "make train" in result.stderr


def test_a_bad_setting_is_reported_without_a_traceback(tmp_path: Path) -> None:
    result = run_runner(stack_environment(tmp_path, BILLING_RASA_PORT="not-a-port"))
    assert result.returncode == 2
    assert "BILLING_RASA_PORT='not-a-port'" in result.stderr and "Traceback" not in result.stderr


def test_a_service_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    service = Service(
        name="broken", command=[sys.executable, "-c", "import sys; print('cannot start: no config'); sys.exit(3)"],
        health_url="http://127.0.0.1:9/", host="127.0.0.1", port=9, startup_timeout=30,
    )
    start(service, {}, tmp_path, tmp_path / "log")
    with pytest.raises(LaunchError, match=r"(?s)broken exited with status 3.*cannot start: no config"):
        wait_until_ready(service)


def test_ctrl_c_stops_both_servers_even_when_started_with_sigint_ignored(tmp_path: Path, trained_model: Path) -> None:
    """A shell starts background jobs with SIGINT ignored; Ctrl-C (SIGINT to the group) must still stop all."""
    env = stack_environment(tmp_path, BILLING_MODEL_PATH=str(trained_model))
    output = tmp_path / "runner.out"
    with output.open("wb") as sink:
        runner = subprocess.Popen(
            [sys.executable, "-m", "runner"], cwd=PROJECT_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 180
        while "\nready in " not in output.read_text() and time.monotonic() < deadline:
            assert runner.poll() is None, output.read_text()
            time.sleep(0.2)  # waiting for the runner's readiness line
        assert "\nready in " in output.read_text(), output.read_text()
        # A service that dies is started again, as systemd would (the mailroom exits non-zero when a loop ends).
        mailroom = int((tmp_path / "run" / "mailroom.pid").read_text())
        os.kill(mailroom, signal.SIGKILL)
        while "mailroom is running again" not in output.read_text() and time.monotonic() < deadline:
            assert runner.poll() is None, output.read_text()
            time.sleep(0.2)  # waiting for the runner to notice and restart it
        assert "mailroom stopped unexpectedly (exit status -9); restarting it" in output.read_text()
        assert int((tmp_path / "run" / "mailroom.pid").read_text()) != mailroom
        children = [int((tmp_path / "run" / f"{name}.pid").read_text()) for name in ("actions", "rasa", "mailroom")]
        os.killpg(runner.pid, signal.SIGINT)
        assert runner.wait(timeout=60) == 0
        assert "stopped." in output.read_text()
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)


def test_a_service_that_keeps_dying_is_given_up_with_its_log(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    service = Service(name="flaky", command=[sys.executable, "-c", (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.write_text(p.read_text() + 'x' if p.exists() else 'x');"
        "print('flaky ready', flush=True); sys.exit(1)"), str(starts)], health_url=None, ready_line="flaky ready")
    start(service, {}, tmp_path, tmp_path / "log")
    with pytest.raises(LaunchError, match=r"flaky stopped 6 times in 5 minutes \(last exit status 1\)"):
        supervise([service], {}, tmp_path / "log", tmp_path / "run")
    assert starts.read_text() == "x" * (1 + RESTARTS_ALLOWED)  # restarted each time until the crash loop showed


# A service that writes its ready line once the file named by its argument exists, then runs until killed.
GATED_SERVICE = (
    "import pathlib, sys, time\n"
    "gate = pathlib.Path(sys.argv[1])\n"
    "while not gate.exists():\n"
    "    time.sleep(0.05)\n"
    "print(sys.argv[2] + ' ready', flush=True)\n"
    "time.sleep(3600)\n"
)
SUPERVISOR = (
    "import sys\n"
    "from pathlib import Path\n"
    "from runner.processes import Service, start, wait_until_ready, write_pid_file\n"
    "from runner.supervise import supervise\n"
    "base = Path(sys.argv[1])\n"
    "services = [Service(name=name, command=[sys.executable, '-c', sys.argv[2], str(base / name), name],\n"
    "                    health_url=None, ready_line=name + ' ready') for name in ('slow', 'quick')]\n"
    "for service in services:\n"
    "    start(service, {}, base, base / 'log')\n"
    "    write_pid_file(service, base / 'run')\n"
    "    wait_until_ready(service)\n"
    "print('all ready', flush=True)\n"
    "supervise(services, {}, base / 'log', base / 'run')\n"
)


def test_a_service_is_restarted_while_another_is_still_starting_again(tmp_path: Path) -> None:
    """A Rasa server loading its model again must not hold up the restart of HAProxy or a console."""
    (tmp_path / "slow").touch()
    (tmp_path / "quick").touch()
    output = tmp_path / "supervisor.out"

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        while text not in output.read_text() and time.monotonic() < deadline:
            assert supervisor.poll() is None, output.read_text()
            time.sleep(0.1)  # polling the supervisor's output
        assert text in output.read_text(), output.read_text()
        return output.read_text()

    def kill(name: str) -> None:
        os.kill(int((tmp_path / "run" / f"{name}.pid").read_text()), signal.SIGKILL)

    with output.open("wb") as sink:
        supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(tmp_path), GATED_SERVICE],
                                      cwd=PROJECT_ROOT, env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)),
                                      stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("all ready")
        (tmp_path / "slow").unlink()  # from now on, "slow" does not get ready when started again
        kill("slow")
        wait_for("slow stopped unexpectedly")
        kill("quick")
        text = wait_for("quick is running again")
        assert "slow is running again" not in text  # still starting: the quick one did not wait for it
        (tmp_path / "slow").touch()
        wait_for("slow is running again")
        assert supervisor.poll() is None
    finally:
        os.killpg(supervisor.pid, signal.SIGKILL)
        supervisor.wait()


def test_the_rasa_servers_endpoints_name_the_action_server_and_send_the_domain_only_where_read(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({"BILLING_ACTION_PORT": "6155", "BILLING_VAR_DIR": str(tmp_path)})
    endpoints = yaml.safe_load(write_endpoints(settings, tmp_path).read_text(encoding="utf-8"))
    assert endpoints["action_endpoint"] == {"url": settings.action_endpoint, "enable_selective_domain": True}
    assert ":6155/" in settings.action_endpoint
