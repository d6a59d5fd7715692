"""Run Envoy on a rendered bootstrap and learn where its listeners ended up.

Listeners bind 127.0.0.1:0, so two runs (or two students on one machine) never collide;
the admin API then tells us each listener's real port.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.client import get, get_json
from meshlab.backends.embedded.envoy.binary import EnvoyBinary
from meshlab.backends.embedded.envoy.dynamic import LAB_VERSION, give_resources
from meshlab.backends.embedded.envoy.spawn import (
    ENVOY,
    START_TIMEOUT,
    StartingEnvoy,
    envoy_failure,
    spawn_envoy,
    write_bootstrap,
)
from meshlab.backends.embedded.processes import ManagedProcess, ProcessGroup, child_env
from meshlab.errors import BackendError
from meshlab.records import dataclass

__all__ = [
    "ENVOY",
    "ConfigRefused",
    "RunningEnvoy",
    "StartingEnvoy",
    "spawn_envoy",
    "start_envoy",
    "take_resources",
    "validate_bootstrap",
    "write_bootstrap",
]
# the update counters and versions of both subscriptions (kept by Istio's inclusion list)
_UPDATES = re.compile(
    r"^(cluster_manager\.cds|listener_manager\.lds)\.(update_rejected|version_text): (.*)$"
)


@dataclass
class RunningEnvoy:
    """A started Envoy: its process, its admin API, and the 127.0.0.1 port each listener really
    bound (they ask for port 0), where requests are sent."""

    process: ManagedProcess
    admin_url: str
    listener_ports: dict[str, int]  # listener name -> bound port on 127.0.0.1
    log_path: Path

    def config_dump(self) -> dict[str, Any]:
        """Envoy's own view of its config: what the mesh actually runs, for failure reports."""
        return get_json(f"{self.admin_url}/config_dump", 10)  # type: ignore[no-any-return]


def validate_bootstrap(binary: EnvoyBinary, config_path: Path) -> tuple[bool, str]:
    """`envoy --mode validate`: Envoy's own verdict on a config, without serving."""
    done = subprocess.run(
        [
            str(binary.path),
            "--mode",
            "validate",
            "-c",
            str(config_path),
            "-l",
            "error",
            "--disable-hot-restart",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=config_path.parent,
        env=child_env(),
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def start_envoy(
    group: ProcessGroup, binary: EnvoyBinary, config_path: Path, workdir: Path
) -> RunningEnvoy:
    """Envoy on a whole (static) bootstrap, once it is ready and its listeners bound."""
    starting = spawn_envoy(group, binary.path, config_path, workdir)
    deadline = time.monotonic() + START_TIMEOUT
    admin_url = starting.admin_url(deadline)
    ports = _wait_listeners(starting.process, admin_url, deadline, starting.log_path)
    return RunningEnvoy(starting.process, admin_url, ports, starting.log_path)


def take_resources(starting: StartingEnvoy, workdir: Path, config: dict[str, Any]) -> RunningEnvoy:
    """Give an Envoy started on `dynamic_bootstrap` the lab's clusters and listeners;
    RunningEnvoy once it runs them all. Refused: ConfigRefused (the caller asks
    `--mode validate` why); exited or too slow: BackendError."""
    deadline = time.monotonic() + START_TIMEOUT
    admin_url = starting.admin_url(deadline)
    process, log = starting.process, starting.log_path
    give_resources(workdir, config)
    try:
        taken = wait_resources_taken(admin_url, deadline, lambda: process.poll() is None)
    except TimeoutError:
        raise envoy_failure(process, log, "did not take the lab's config in time") from None
    if not taken:
        if process.poll() is not None:
            raise envoy_failure(process, log, "Envoy exited taking the lab's config")
        raise ConfigRefused(envoy_failure(process, log, "Envoy refused the lab's config"))
    names = [lst["name"] for lst in config["static_resources"]["listeners"]]
    ports = _wait_named_listeners(process, admin_url, deadline, log, names)
    return RunningEnvoy(process, admin_url, ports, log)


class ConfigRefused(Exception):
    """Envoy turned the lab's listeners or clusters down (it keeps running, as a sidecar
    that NACKs does); `error` says so with Envoy's log."""

    def __init__(self, error: BackendError) -> None:
        super().__init__(str(error))
        self.error = error


def _wait_listeners(
    process: ManagedProcess, admin_url: str, deadline: float, log_path: Path
) -> dict[str, int]:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise envoy_failure(process, log_path, "Envoy exited during start-up")
        try:
            status, _ = get(f"{admin_url}/ready", 5)
            if status == 200:
                return _listener_ports(get_json(f"{admin_url}/listeners?format=json", 5))
        except (OSError, HTTPException):
            pass
        time.sleep(0.005)
    raise envoy_failure(process, log_path, f"Envoy was not ready within {START_TIMEOUT:.0f} s")


def _listener_ports(payload: dict[str, Any]) -> dict[str, int]:
    ports = {}
    for listener in payload.get("listener_statuses", []):
        address = listener.get("local_address", {}).get("socket_address", {})
        ports[listener["name"]] = int(address.get("port_value", 0))
    return ports


def _wait_named_listeners(
    process: ManagedProcess, admin_url: str, deadline: float, log_path: Path, names: list[str]
) -> dict[str, int]:
    """The listeners' ports once every one of `names` is active (LDS listeners warm first)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise envoy_failure(process, log_path, "Envoy exited during start-up")
        ports = _listener_ports(get_json(f"{admin_url}/listeners?format=json", 5))
        if all(n in ports for n in names):
            return ports
        time.sleep(0.003)
    raise envoy_failure(process, log_path, f"Envoy was not ready within {START_TIMEOUT:.0f} s")


def update_state(admin_url: str) -> tuple[bool, bool]:
    """(taken, rejected): whether Envoy runs the lab's clusters and listeners, whether it
    refused an update. Both False while it has not looked yet."""
    _, body = get(f"{admin_url}/stats?filter=update_rejected|version_text", 5)
    versions, rejected = {}, False
    for line in body.decode("utf-8", "replace").splitlines():
        found = _UPDATES.match(line)
        if found is None:
            continue
        source, what, value = found.groups()
        if what == "update_rejected":
            rejected = rejected or value.strip() not in ("0", "")
        else:
            versions[source] = value.strip().strip('"')
    taken = all(versions.get(s) == LAB_VERSION for s in ("cluster_manager.cds",
                                                          "listener_manager.lds"))  # fmt: skip
    return taken, rejected


def wait_resources_taken(admin_url: str, deadline: float, alive: Callable[[], bool]) -> bool:
    """Poll until Envoy runs the lab's resources (True) or refused them (False); raises
    TimeoutError at `deadline`. `alive()` False (Envoy exited) ends the wait as a refusal."""
    while time.monotonic() < deadline:
        try:
            taken, rejected = update_state(admin_url)
        except (OSError, HTTPException):
            taken, rejected = False, False
        if rejected or not alive():
            return False
        if taken:
            return True
        time.sleep(0.003)
    raise TimeoutError("Envoy did not take the lab's listeners and clusters")
