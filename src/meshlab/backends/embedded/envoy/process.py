"""Run Envoy on a rendered bootstrap and learn where its listeners ended up.

Listeners bind 127.0.0.1:0, so two runs (or two students on one machine) never collide;
the admin API then tells us each listener's real port.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.client import get, get_json
from meshlab.backends.embedded.envoy.binary import EnvoyBinary
from meshlab.backends.embedded.processes import ManagedProcess, ProcessGroup, child_env
from meshlab.errors import BackendError

START_TIMEOUT = 30.0
ENVOY = "Envoy"  # its name in the process group and in every message about it


@dataclass
class RunningEnvoy:
    process: ManagedProcess
    admin_url: str
    listener_ports: dict[str, int]  # listener name -> bound port on 127.0.0.1
    log_path: Path

    def config_dump(self) -> dict[str, Any]:
        """Envoy's own view of its config: what the mesh actually runs, for failure reports."""
        return get_json(f"{self.admin_url}/config_dump", 10)  # type: ignore[no-any-return]


def write_bootstrap(config: dict[str, Any], path: Path) -> Path:
    """Compact JSON: only Envoy reads this file, and `indent` would make json fall back from
    its C encoder to pure Python (~10 ms of a run's start for lab 2's 200 kB, 8x slower)."""
    path.write_text(json.dumps(config, separators=(",", ":")), encoding="utf-8")
    return path


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
    admin_file = workdir / "admin-address"
    log_path = workdir / "envoy.log"
    argv = [
        str(binary.path),
        "-c",
        str(config_path),
        "--admin-address-path",
        str(admin_file),
        "--disable-hot-restart",  # no shared memory: concurrent runs cannot clash
        "--concurrency",
        "2",
        "-l",
        "warning",
        "--log-path",
        str(log_path),
    ]
    process = group.spawn(
        ENVOY, argv, env=child_env(), cwd=workdir, log_path=workdir / "envoy.stderr"
    )
    deadline = time.monotonic() + START_TIMEOUT
    admin_url = _wait_admin(process, admin_file, deadline, log_path)
    ports = _wait_listeners(process, admin_url, deadline, log_path)
    return RunningEnvoy(process, admin_url, ports, log_path)


def _fail(process: ManagedProcess, log_path: Path, what: str) -> BackendError:
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    error = process.failure(what)
    if log:
        error = BackendError(f"{error}\nenvoy.log:\n{log}")
    return error


def _wait_admin(process: ManagedProcess, admin_file: Path, deadline: float, log_path: Path) -> str:
    while time.monotonic() < deadline:
        if admin_file.exists():
            address = admin_file.read_text().strip()
            if address:
                return f"http://{address}"
        if process.poll() is not None:
            raise _fail(process, log_path, "Envoy exited during start-up")
        time.sleep(0.01)
    raise _fail(process, log_path, f"Envoy did not start within {START_TIMEOUT:.0f} s")


def _wait_listeners(
    process: ManagedProcess, admin_url: str, deadline: float, log_path: Path
) -> dict[str, int]:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _fail(process, log_path, "Envoy exited during start-up")
        try:
            status, _ = get(f"{admin_url}/ready", 5)
            if status == 200:
                return _listener_ports(get_json(f"{admin_url}/listeners?format=json", 5))
        except (OSError, HTTPException):
            pass
        time.sleep(0.005)
    raise _fail(process, log_path, f"Envoy was not ready within {START_TIMEOUT:.0f} s")


def _listener_ports(payload: dict[str, Any]) -> dict[str, int]:
    ports = {}
    for listener in payload.get("listener_statuses", []):
        address = listener.get("local_address", {}).get("socket_address", {})
        ports[listener["name"]] = int(address.get("port_value", 0))
    return ports
