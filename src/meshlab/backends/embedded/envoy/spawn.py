"""Start an Envoy process, and wait for its admin endpoint: what a run needs before it has
read the lab (warm.py starts Envoy first thing), so nothing heavier is imported here."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.processes import ManagedProcess, ProcessGroup, child_env
from meshlab.errors import BackendError
from meshlab.records import dataclass

START_TIMEOUT = 30.0
ENVOY = "Envoy"  # its name in the process group and in every message about it


def write_bootstrap(config: dict[str, Any], path: Path) -> Path:
    """Compact JSON: only Envoy reads this file, and `indent` would make json fall back from
    its C encoder to pure Python (~10 ms of a run's start for lab 2's 200 kB, 8x slower)."""
    path.write_text(json.dumps(config, separators=(",", ":")), encoding="utf-8")
    return path


@dataclass
class StartingEnvoy:
    """An Envoy process whose admin endpoint may not be up yet."""

    process: ManagedProcess
    admin_file: Path
    log_path: Path

    def admin_url(self, deadline: float) -> str:
        return wait_admin(self.process, self.admin_file, deadline, self.log_path)


def spawn_envoy(group: ProcessGroup, path: Path, config_path: Path, workdir: Path) -> StartingEnvoy:
    """Start Envoy on `config_path`; its admin address appears in `workdir`."""
    admin_file = workdir / "admin-address"
    log_path = workdir / "envoy.log"
    argv = [
        str(path),
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
    # SIGKILL at the end: Envoy keeps nothing a run needs afterwards (no hot restart, its
    # files go with the run's folder), and its orderly shutdown took 20-50 ms of every run
    process = group.spawn(
        ENVOY,
        argv,
        env=child_env(),
        cwd=workdir,
        log_path=workdir / "envoy.stderr",
        stop_signal=getattr(signal, "SIGKILL", signal.SIGTERM),
    )
    return StartingEnvoy(process, admin_file, log_path)


def envoy_failure(process: ManagedProcess, log_path: Path, what: str) -> BackendError:
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    error = process.failure(what)
    if log:
        error = BackendError(f"{error}\nenvoy.log:\n{log}")
    return error


def wait_admin(process: ManagedProcess, admin_file: Path, deadline: float, log_path: Path) -> str:
    while time.monotonic() < deadline:
        if admin_file.exists():
            address = admin_file.read_text().strip()
            if address:
                return f"http://{address}"
        if process.poll() is not None:
            raise envoy_failure(process, log_path, "Envoy exited during start-up")
        time.sleep(0.01)
    raise envoy_failure(process, log_path, f"Envoy did not start within {START_TIMEOUT:.0f} s")
