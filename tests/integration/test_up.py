"""`meshlab up`: the mesh stays up, says how to reach it, answers curl, and Ctrl-C or SIGTERM
leaves nothing running."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"


def start_up(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", "from meshlab.cli import main; main()", "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_until_ready(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        if line.startswith("Ctrl-C stops it"):
            return seen
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"meshlab up never said it was ready:\n{seen}{err}")


def children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_until_stopped(stop: signal.Signals) -> None:
    proc = start_up(str(LAB2), "--port", "0")
    try:
        said = read_until_ready(proc)
        line = next(x for x in said.splitlines() if "Host: fleetman-staff-service:8080" in x)
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
        started = children(proc.pid)
        assert len(started) >= 2  # Envoy and a stand-in host for the pods
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/driver/City%20Truck", headers={"Host": "fleetman-staff-service:8080"})
        answer = conn.getresponse()
        assert answer.status == 200
        assert b"Pam Parry" in answer.read()
        conn.close()
        proc.send_signal(stop)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # closes the pipes
    assert code == (130 if stop == signal.SIGINT else 143)
    assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_up_refuses_a_taken_port() -> None:
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start_up(str(LAB2), "--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"127.0.0.1:{port} is taken" in err
