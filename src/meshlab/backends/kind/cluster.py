"""Which cluster a run uses, and the rule for deleting it: only what meshlab created.

* `--kubeconfig FILE`: that cluster, as it is. meshlab creates a namespace per lab there and
  never deletes anything else, least of all the cluster.
* otherwise a kind cluster named `meshlab`, created with pytest-kind's `KindCluster` at the
  pinned kind and node image, or reused when it already exists. meshlab records that it
  created it (a marker in its cache), deletes it at the end unless --keep-cluster, and never
  deletes a `meshlab` cluster that it finds without its marker.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from meshlab.backends.kind.apply import Progress
from meshlab.backends.kind.kube import _EXTRA_HINT
from meshlab.backends.kind.tools import NODE_IMAGE, Runner, Tools
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.records import dataclass

OWNER_MARKER = "created-by-meshlab"


class ClusterHandle(Protocol):
    @property
    def kubeconfig(self) -> Path: ...

    @property
    def owned(self) -> bool: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


@dataclass
class ExistingCluster:
    """A cluster meshlab did not create: used, never deleted."""

    kubeconfig: Path
    owned: bool = False

    def describe(self) -> str:
        return f"existing cluster from {self.kubeconfig}"

    def close(self) -> None:
        """Nothing: meshlab deletes only what it created (its namespaces, separately)."""


class KindClusterLike(Protocol):
    def create(self) -> None: ...

    def delete(self) -> None: ...


ClusterFactory = Callable[[str, Path, str, Path], KindClusterLike]


def pytest_kind_cluster(name: str, kubeconfig: Path, image: str, kind: Path) -> KindClusterLike:
    """pytest-kind's KindCluster with our kind binary, node image and kubeconfig.

    KindCluster makes a `.pytest-kind/<name>` folder in the working directory; it is built
    from inside the cache folder so that this lands there, not in the user's project.
    """
    try:
        from pytest_kind import KindCluster
    except ImportError:
        raise BackendUnavailable(_EXTRA_HINT) from None
    with contextlib.chdir(kubeconfig.parent):
        cluster: Any = KindCluster(name, kubeconfig=kubeconfig, image=image, kind_path=kind)
    return cluster  # type: ignore[no-any-return]


@dataclass
class KindSession:
    """The kind cluster of a run: opened once, reused by every lab of the session."""

    name: str
    tools: Tools
    runner: Runner
    cache: Path
    keep: bool
    progress: Progress
    factory: ClusterFactory = pytest_kind_cluster
    owned: bool = False
    created_now: bool = False
    _cluster: KindClusterLike | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        return self.cache / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "kubeconfig"

    @property
    def marker(self) -> Path:
        return self.folder / OWNER_MARKER

    def describe(self) -> str:
        how = "created by this run" if self.created_now else "reused"
        owner = "" if self.owned else ", not created by meshlab: never deleted by it"
        return f"kind cluster {self.name} ({how}{owner})"

    def open(self) -> None:
        kind = self.tools.kind()
        listed = self.runner.run([str(kind.path), "get", "clusters"], timeout=60.0)
        if listed.returncode != 0:
            raise BackendError(listed.failure("kind could not list its clusters"))
        exists = self.name in listed.stdout.split()
        self.folder.mkdir(parents=True, exist_ok=True)
        if exists:
            self.owned = self.marker.is_file()
            self.progress(
                f"reusing kind cluster {self.name}"
                + ("" if self.owned else " (not created by meshlab: it will not be deleted)")
            )
        else:
            # Written first, so that a cluster half made when Ctrl-C hits is still ours.
            self.marker.write_text(f"created by meshlab at {datetime.now(UTC).isoformat()}\n")
            self.owned = self.created_now = True
            self.progress(
                f"creating kind cluster {self.name} ({kind.describe()}, node image "
                f"{NODE_IMAGE.split('@')[0]}); about 20-60 s, plus the node image download "
                "on the first run"
            )
        self._cluster = self.factory(self.name, self.kubeconfig, NODE_IMAGE, kind.path)
        try:
            if exists:
                # KindCluster.create() reads the kubeconfig of a cluster it finds; kind
                # writes a fresh one (the API server's port changes when Docker restarts).
                self._export_kubeconfig(kind.path)
            self._cluster.create()  # `kind create cluster ...` unless it exists
        except subprocess.CalledProcessError as exc:
            self._abandon(exists)
            command = shlex.join(str(a) for a in exc.cmd)
            raise BackendError(
                f"kind failed: `{command}` exited with {exc.returncode} (its output is above)"
            ) from None
        except BaseException:
            self._abandon(exists)
            raise

    def _export_kubeconfig(self, kind: Path) -> None:
        argv = [str(kind), "export", "kubeconfig", f"--name={self.name}"]
        exported = self.runner.run([*argv, f"--kubeconfig={self.kubeconfig}"], timeout=60.0)
        if exported.returncode != 0:
            raise BackendError(exported.failure("kind could not write the kubeconfig"))

    def _abandon(self, existed: bool) -> None:
        """A cluster this run started to create is deleted again, --keep-cluster or not."""
        if not existed:
            self.keep = False
            self.close()

    def close(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is None:
            return
        if not self.owned:
            return
        if self.keep:
            self.progress(
                f"kept kind cluster {self.name}; delete it with `kind delete cluster --name "
                f"{self.name}`"
            )
            return
        self.progress(f"deleting kind cluster {self.name}")
        try:
            cluster.delete()
        except subprocess.CalledProcessError as exc:
            raise BackendError(
                f"kind could not delete cluster {self.name} (exit {exc.returncode}); delete it "
                f"with `kind delete cluster --name {self.name}`"
            ) from None
        self.marker.unlink(missing_ok=True)
