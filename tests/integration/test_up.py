"""`meshlab up`: the mesh stays up, says how to reach it, answers curl, and Ctrl-C or SIGTERM
leaves nothing running."""

from __future__ import annotations

import http.client
import os
import re
import shutil
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


# The webapp through the ingress gateway in a real browser, as a student opens it

CHROMIUM = os.environ.get("MESHLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
GATEWAYS = ROOT / "tests" / "data" / "gateways"
SUBDOMAIN_LAB = """title: the webapp by subdomain
manifests: [webapp.yaml, subdomain.yaml]
checks:
  - name: experimental
    kind: split
    request: {url: "http://experimental.fleetman.com/", from: browser}
    expect: {experimental: 100}
"""


@pytest.mark.chromium
@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"headless Chromium not found ({CHROMIUM}; Debian: apt-get install chromium, which "
    ".ci/run does), so the page through the gateway was not opened in a browser",
)
def test_a_browser_reaches_the_webapp_through_the_gateway(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    for name in ("webapp.yaml", "subdomain.yaml"):
        shutil.copy(GATEWAYS / name, lab / name)
    (lab / "lab.yaml").write_text(SUBDOMAIN_LAB)
    proc = start_up(str(lab), "--port", "0")
    try:
        said = read_until_ready(proc)
        port = re.search(r"http://experimental\.fleetman\.com:(\d+)/", said).group(1)  # type: ignore[union-attr]
        pages = {}
        for host in ("fleetman.com", "experimental.fleetman.com"):
            done = subprocess.run(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    f"--user-data-dir={tmp_path / host}",
                    # the /etc/hosts line `meshlab up` asks for, without touching /etc/hosts
                    f"--host-resolver-rules=MAP {host} 127.0.0.1",
                    "--dump-dom",
                    f"http://{host}:{port}/",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            pages[host] = done.stdout
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert code == 130
    assert 'data-meshlab-variant="experimental"' in pages["experimental.fleetman.com"]
    assert "Fleet Management" in pages["fleetman.com"]
    assert "experimental" not in pages["fleetman.com"].lower()


def _staff_port(said: str) -> int:
    line = next(x for x in said.splitlines() if "Host: fleetman-staff-service:8080" in x)
    return int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]


def _versions(port: int, n: int = 20) -> set[str]:
    seen = set()
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/driver/City%20Truck", headers={"Host": "fleetman-staff-service:8080"})
        answer = conn.getresponse()
        answer.read()
        seen.add(answer.getheader("x-meshlab-upstream-host", ""))
        conn.close()
    return seen


def test_watch_reapplies_a_changed_lab_and_keeps_the_mesh_on_a_broken_one(
    tmp_path: Path,
) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab, ignore=shutil.ignore_patterns("test_*", "__pycache__"))
    rules = lab / "istio-rules.yaml"
    proc = start_up(str(lab), "--port", "0", "--watch")
    try:
        before = _versions(_staff_port(read_until_ready(proc)), 200)
        assert len(before) == 2  # 90/10: both builds in 200 requests, but for 0.9**200
        rules.write_text(
            rules.read_text()
            .replace("weight: 90", "weight: 0")
            .replace("weight: 10", "weight: 100")
        )
        said = read_until_ready(proc)
        assert "the lab changed: re-applying" in said
        after = _versions(_staff_port(said))
        assert len(after) == 1  # every request to the risky build now
        rules.write_text("kind: VirtualService\n  bad: [indent\n")
        time.sleep(2)  # polled every 0.5 s: the broken file is read and refused
        assert proc.poll() is None  # still running: the last good mesh stays
        assert _versions(_staff_port(said), 5) == after
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 130
    assert "the lab no longer loads; the running mesh stays" in err
    assert "istio-rules.yaml" in err
