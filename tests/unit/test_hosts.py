"""Stand-in hosts: pods spread over a few processes, each pod still its own listener, name
and labels; a dead host is a backend fault that names every pod it took down."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from meshlab.backends.embedded.hosts import PASS_SOCKETS, StandinLaunch, spread, start_standins
from meshlab.backends.embedded.processes import ProcessGroup
from meshlab.backends.embedded.standins import PodSpec
from meshlab.backends.embedded.watch import Watchdog
from meshlab.errors import BackendError


def pods(n: int, deployments: int = 3) -> list[PodSpec]:
    """`n` echo pods of `deployments` Deployments, in registry order (a Deployment's adjacent)."""
    per = -(-n // deployments)
    return [
        PodSpec(f"d{i // per}-{i % per}", f"ns{i % 2}", "nginx:1", {"app": f"d{i // per}"}, (80,))
        for i in range(n)
    ]


def test_spread_deals_round_robin_over_few_hosts() -> None:
    many = pods(203, deployments=7)
    hosts = spread(many, per_host=32, max_hosts=8)
    assert len(hosts) == 7
    assert sorted(p.name for h in hosts for p in h) == sorted(p.name for p in many)
    assert max(map(len, hosts)) - min(map(len, hosts)) <= 1
    for host in hosts:  # every Deployment has pods on every host
        assert {p.labels["app"] for p in host} == {f"d{i}" for i in range(7)}
    assert len(spread(many, per_host=32, max_hosts=2)) == 2  # no more hosts than cores
    assert spread(pods(7), per_host=32, max_hosts=8) == [pods(7)]
    assert spread(pods(2), per_host=1, max_hosts=8) == [[p] for p in pods(2)]
    assert spread([], per_host=32, max_hosts=8) == []


def echo(port: int) -> tuple[str | None, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/who")
        response = conn.getresponse()
        return response.getheader("x-meshlab-pod"), json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def group() -> Iterator[ProcessGroup]:
    with ProcessGroup() as g:
        yield g


def test_each_pod_keeps_its_listeners_name_and_labels_across_hosts(
    group: ProcessGroup, tmp_path: Path
) -> None:
    fleet = [*pods(7), PodSpec("two-ports", "other", "nginx:1", {"x": "y"}, (80, 9090))]
    mapping = start_standins(group, fleet, cwd=tmp_path, per_host=3, max_hosts=4)
    assert len(group.processes) == 3
    assert [p.name for p in group.processes] == [
        "stand-in host 1/3 (3 pods)",
        "stand-in host 2/3 (3 pods)",
        "stand-in host 3/3 (2 pods)",
    ]
    assert list(tmp_path.iterdir()) == []  # the spec files are gone once the hosts read them
    for first in ("m", "n"):  # two more starts in the same group: names stay unique
        more = [PodSpec(f"{first}{i}", "default", "nginx", {}, (80,)) for i in range(2)]
        start_standins(group, more, per_host=2, max_hosts=4)
    assert [p.name for p in group.processes[3:]] == [
        "stand-in host 1/1 (2 pods)",
        "stand-in host 1/1 #2 (2 pods)",
    ]
    ports = [p for m in mapping.values() for p in m.values()]
    assert len(set(ports)) == len(ports) == 9
    for pod in fleet:
        assert set(mapping[pod.name]) == set(pod.container_ports)
        for port in mapping[pod.name].values():
            name, body = echo(port)
            assert (name, body["pod"], body["namespace"]) == (pod.name, pod.name, pod.namespace)
            assert body["labels"] == dict(pod.labels)


def test_a_dead_host_is_a_backend_fault_naming_its_pods(group: ProcessGroup) -> None:
    fleet = pods(6)
    mapping = start_standins(group, fleet, per_host=2, max_hosts=3)
    hosts = spread(fleet, per_host=2, max_hosts=3)
    victim = group.processes[1]
    on_victim = {p.name for p in hosts[1]}
    assert victim.members == tuple(f"{p.namespace}/{p.name}" for p in hosts[1])
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    watch = Watchdog(group.processes, group.processes[0], "http://127.0.0.1:1")
    with pytest.raises(BackendError) as info:
        watch.raise_if_dead()
    message = str(info.value)
    assert "stand-in host 2/3 (2 pods) died during the run" in message
    assert "killed by SIGKILL" in message
    for pod in fleet:
        assert (f"/{pod.name}" in message) is (pod.name in on_victim)
    for pod in fleet:  # the other hosts' pods still answer
        if pod.name not in on_victim:
            assert echo(mapping[pod.name][80])[0] == pod.name


def test_a_malformed_spec_is_refused_naming_the_entry() -> None:
    spec = {"pods": [{"name": "a", "image": "nginx", "ports": [80]}, {"name": 3}]}
    result = run_host(json.dumps(spec))
    assert result.returncode == 2
    assert b"pods[1]: name, namespace and image must be strings" in result.stderr
    dupes = {"pods": [{"name": "a", "image": "x", "ports": [80]}] * 2}
    assert b"duplicate pod names: a" in run_host(json.dumps(dupes)).stderr


@pytest.mark.skipif(not PASS_SOCKETS, reason="sockets are passed on to a child on POSIX only")
def test_ports_are_known_before_the_hosts_are_ready(group: ProcessGroup, tmp_path: Path) -> None:
    """The supervisor binds each pod's listener and hands it to the host: Envoy may be given
    the ports before any host has printed its ready line, and they are the ports served."""
    fleet = [*pods(3), PodSpec("two-ports", "other", "nginx:1", {}, (80, 9090))]
    launch = StandinLaunch(group, fleet, cwd=tmp_path, per_host=2, max_hosts=2)
    known = launch.addresses
    assert known is not None
    assert {p.name: set(known[p.name]) for p in fleet} == {
        p.name: set(p.container_ports) for p in fleet
    }
    assert launch.wait() == known
    assert launch.wait() == known  # read once, answered again
    assert list(tmp_path.iterdir()) == []  # the spec files are gone
    for pod in fleet:
        for port in known[pod.name].values():
            assert echo(port)[0] == pod.name


def test_listeners_that_do_not_match_the_pods_are_refused() -> None:
    pod = {"name": "a", "image": "nginx", "ports": [80]}
    wrong_port = {"pods": [pod], "listeners": {"a": {"81": 3}}}
    result = run_host(json.dumps(wrong_port))
    assert result.returncode == 2
    assert b"listeners['a']: ports [81] != {80}" in result.stderr
    not_a_pod = {"pods": [pod], "listeners": {"b": {"80": 3}}}
    assert b"listeners['b']: not a pod of this spec" in run_host(json.dumps(not_a_pod)).stderr


def run_host(spec_text: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(spec_text)
    try:
        argv = [sys.executable, "-m", "meshlab.backends.embedded.standins", "--spec", f.name]
        return subprocess.run(argv, capture_output=True, timeout=30, check=False)
    finally:
        Path(f.name).unlink()


def test_stopping_a_host_closes_every_pod(group: ProcessGroup) -> None:
    mapping = start_standins(group, pods(4), per_host=4)
    [host] = group.processes
    bound = {p for m in mapping.values() for p in m.values()}
    listening = {
        c.laddr.port
        for c in psutil.Process(host.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == bound
    host.send_signal(signal.SIGTERM)
    assert host.wait(timeout=10) == 0
    for port in bound:
        with pytest.raises(ConnectionRefusedError):
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()
