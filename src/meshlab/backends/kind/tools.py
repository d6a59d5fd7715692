"""Pinned versions, the external commands (docker, kind, istioctl) and how to get them.

Binaries are fetched only when someone runs the kind backend on their own machine, into a
user cache directory, and checked with SHA-256 before they are ever executed. Every command
goes through a `Runner`, so tests see (and assert) the exact argv without running anything.

Where a digest comes from: CHECKSUMS, shipped with meshlab, first. A download must match
it *and* the checksum file the release publishes next to the asset (a mismatch between the
two means the asset changed after the release). Without a shipped digest, the published
checksum alone is used: that comes from the same origin as the download, so it catches a
broken transfer but not a substituted release; meshlab says so when it happens, and refuses
it outright with `pinned_only` (the kind backend's grading mode). The digest is recorded in
the cache, with how it was verified, and later runs re-hash the cached binary against it.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from meshlab.backends.cachedir import cache_dir
from meshlab.errors import BackendError, BackendUnavailable
from meshlab.records import dataclass

# kind v0.32.0 defaults to this node image (kind pkg/apis/config/defaults/image.go); Istio
# 1.30 and 1.31 support Kubernetes 1.32-1.36. pytest-kind's own defaults date from 2022.
KIND_VERSION = "v0.32.0"
NODE_IMAGE = (
    "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5"
)
ISTIO_VERSION = "1.31.1"
SUPPORTED_ISTIO_VERSIONS = ("1.31.1", "1.30.5")

ENV_KIND = "MESHLAB_KIND"
ENV_ISTIOCTL = "MESHLAB_ISTIOCTL"

# SHA-256 of each pinned release asset, as published beside it (`<asset>.sha256sum`). They
# could not be read from the releases here (no internet); each kind digest is the one that
# several unrelated public repositories pin for that asset, their install scripts checking
# it against the published .sha256sum. No istioctl 1.31.1 / 1.30.5 digest could be
# corroborated that way, so none is shipped: istioctl downloads fall back to the published
# checksum, and are refused when grading (docs/reference/backends.md, "Tool checksums").
CHECKSUMS: dict[tuple[str, str, str, str], str] = {
    ("kind", "v0.32.0", "linux", "amd64"): (
        "50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54"
    ),
    ("kind", "v0.32.0", "linux", "arm64"): (
        "b92cd615e97585de8ddade28ed5cd7feb4248d717c233eea5b03c37298900f5d"
    ),
    ("kind", "v0.32.0", "darwin", "amd64"): (
        "295ac6d0d634c9819c9907df45e3017d1f13166bd13c3404c45e79f7faa47498"
    ),
    ("kind", "v0.32.0", "darwin", "arm64"): (
        "dca67911095a110c2b5c36e26df6cac860c602033e456c0db47be498cdef1ebb"
    ),
    ("kind", "v0.32.0", "windows", "amd64"): (
        "0bcb2d1cfedc1912d664014db716937e8a0e843e91c6807b4db2025dbc8989fa"
    ),
}

DOCKER_INFO_TIMEOUT = 15.0
_SHA256 = re.compile(r"\b([0-9a-f]{64})\b")
PINNED, SAME_ORIGIN = "pinned", "same-origin"  # how a cached tool was verified


# --- running commands --------------------------------------------------------------------


@dataclass(frozen=True)
class Completed:
    """A finished external command: its argv, exit code and output, and a failure message that
    quotes them."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    def failure(self, what: str) -> str:
        tail = (self.stderr or self.stdout).strip().splitlines()[-15:]
        shown = "\n".join(f"    {line}" for line in tail) or "    (no output)"
        return f"{what}\n  command: {shlex.join(self.argv)}\n  exit code {self.returncode}\n{shown}"


class Runner(Protocol):
    """Runs one command to completion; a seam so tests record argv instead of running it."""

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> Completed: ...


class SubprocessRunner:
    """The real runner: captured output, a timeout, never a shell."""

    def run(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> Completed:
        args = tuple(str(a) for a in argv)
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=None if env is None else {**os.environ, **env},
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stderr or exc.stdout or b""
            text = out.decode("utf-8", "replace") if isinstance(out, bytes) else out
            return Completed(args, -1, "", f"timed out after {timeout:g} s\n{text}")
        except OSError as exc:
            return Completed(args, -1, "", f"could not start: {exc}")
        return Completed(args, done.returncode, done.stdout, done.stderr)


# --- Docker ------------------------------------------------------------------------------

DOCKER_HOWTO = (
    "Install and start Docker (Docker Desktop on macOS/Windows, Docker Engine on Linux: "
    "https://docs.docker.com/get-docker/), or pass --kubeconfig FILE to use a cluster you "
    "already have."
)


def check_docker(runner: Runner, which: Callable[[str], str | None] | None = None) -> str:
    """The Docker engine's version; BackendUnavailable (with how to fix it) if unreachable."""
    docker = (which or shutil.which)("docker")
    if docker is None:
        raise BackendUnavailable(
            f"the kind backend needs Docker and there is no `docker` command here. {DOCKER_HOWTO}"
        )
    done = runner.run(
        [docker, "info", "--format", "{{.ServerVersion}}"], timeout=DOCKER_INFO_TIMEOUT
    )
    if done.returncode != 0 or not done.stdout.strip():
        said = (done.stderr or done.stdout).strip().splitlines()
        detail = said[0] if said else f"exit code {done.returncode}"
        raise BackendUnavailable(
            f"the kind backend needs a running Docker engine and none is reachable "
            f"(`docker info`: {detail}). {DOCKER_HOWTO}"
        )
    return done.stdout.strip()


# --- pinned binaries ---------------------------------------------------------------------


@dataclass(frozen=True)
class ToolPin:
    """One downloadable binary for one platform."""

    name: str
    version: str
    url: str
    checksum_url: str
    sha256: str | None = None  # pinned digest; None: use the release's published checksum
    member: str | None = None  # the file inside a .tar.gz archive


def host_platform() -> tuple[str, str]:
    """(os, arch) in Go's spelling: ("linux", "amd64"), ("darwin", "arm64"), ..."""
    system = sys.platform
    os_name = "darwin" if system == "darwin" else "windows" if system == "win32" else "linux"
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return os_name, arch


def kind_pin(os_name: str, arch: str) -> ToolPin:
    asset = f"kind-{os_name}-{arch}"
    base = f"https://github.com/kubernetes-sigs/kind/releases/download/{KIND_VERSION}/{asset}"
    sha256 = CHECKSUMS.get(("kind", KIND_VERSION, os_name, arch))
    return ToolPin("kind", KIND_VERSION, base, f"{base}.sha256sum", sha256)


def istioctl_pin(version: str, os_name: str, arch: str) -> ToolPin:
    if os_name == "windows":
        raise BackendUnavailable(
            f"meshlab does not download istioctl for Windows; get istioctl {version} from "
            f"https://github.com/istio/istio/releases/tag/{version} and set ${ENV_ISTIOCTL}."
        )
    suffix = f"osx-{arch}" if os_name == "darwin" else f"linux-{arch}"
    asset = f"istioctl-{version}-{suffix}.tar.gz"
    base = f"https://github.com/istio/istio/releases/download/{version}/{asset}"
    sha256 = CHECKSUMS.get(("istioctl", version, os_name, arch))
    return ToolPin("istioctl", version, base, f"{base}.sha256", sha256, member="istioctl")


class Downloader(Protocol):
    def fetch(self, url: str) -> bytes: ...


class HttpDownloader:
    """HTTPS downloads with redirects (GitHub release assets live behind one)."""

    def fetch(self, url: str) -> bytes:
        import httpx

        try:
            response = httpx.get(url, follow_redirects=True, timeout=120.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"could not download {url}: {exc}. Download it yourself and point meshlab at "
                f"the binary (${ENV_KIND} / ${ENV_ISTIOCTL})."
            ) from None
        return response.content


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _published_digest(text: str, url: str) -> str:
    match = _SHA256.search(text.lower())
    if match is None:
        raise BackendUnavailable(f"the checksum file {url} holds no SHA-256 digest")
    return match.group(1)


@dataclass(frozen=True)
class ResolvedTool:
    """A kind or istioctl binary ready to run: where it is, its version, and where it came from, for
    progress lines and diagnostics."""

    name: str
    path: Path
    version: str
    source: str  # "$MESHLAB_KIND", "PATH", "cache", "downloaded"

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.path}, {self.source})"


class Tools:
    """Finds kind and istioctl: $MESHLAB_KIND/$MESHLAB_ISTIOCTL, the cache, PATH (only at the
    pinned version), else downloads the pinned release into the cache and verifies it."""

    def __init__(
        self,
        runner: Runner,
        downloader: Downloader | None = None,
        cache: Path | None = None,
        env: Mapping[str, str] | None = None,
        which: Callable[[str], str | None] | None = None,
        platform_: tuple[str, str] | None = None,
        progress: Callable[[str], None] = lambda line: None,
        pinned_only: bool = False,
    ) -> None:
        self.runner = runner
        self.pinned_only = pinned_only  # refuse what only a same-origin checksum vouches for
        self.downloader = downloader or HttpDownloader()
        self.cache = cache or cache_dir()
        self.env = os.environ if env is None else env
        self.which = which or shutil.which
        self.platform = platform_ or host_platform()
        self.progress = progress

    def kind(self) -> ResolvedTool:
        return self._resolve(
            kind_pin(*self.platform), ENV_KIND, ["version"], re.compile(r"\bv(\d+\.\d+\.\d+)")
        )

    def istioctl(self, version: str) -> ResolvedTool:
        pattern = re.compile(r"(\d+\.\d+\.\d+)")
        if self.env.get(ENV_ISTIOCTL):
            return self._explicit("istioctl", ENV_ISTIOCTL, ["version", "--remote=false"], pattern)
        pin = istioctl_pin(version, *self.platform)
        return self._resolve(pin, ENV_ISTIOCTL, ["version", "--remote=false"], pattern)

    def preflight(self, istio_version: str) -> list[str]:
        """Without running or fetching anything: refuse (BackendUnavailable) when kind or
        istioctl cannot be had here; else say which of them a run would download."""
        notes = []
        os_name, arch = self.platform
        for name, env in (("kind", ENV_KIND), ("istioctl", ENV_ISTIOCTL)):
            explicit = self.env.get(env)
            if explicit:
                if not Path(explicit).is_file():
                    raise BackendUnavailable(f"${env} is {explicit}, which is not a file")
                continue
            if arch not in ("amd64", "arm64"):
                raise BackendUnavailable(
                    f"meshlab downloads {name} for amd64 and arm64 only, and this machine is "
                    f"{arch}; install {name} yourself and set ${env}"
                )
            pin = (
                kind_pin(os_name, arch)
                if name == "kind"
                else istioctl_pin(istio_version, os_name, arch)
            )
            if not self._cached_path(pin).is_file() and self.which(name) is None:
                if self.pinned_only and pin.sha256 is None:
                    raise BackendUnavailable(_unpinned(pin))
                notes.append(f"{name} {pin.version} will be downloaded from {pin.url}")
        return notes

    # -- internals ------------------------------------------------------------------------

    def _resolve(
        self, pin: ToolPin, env: str, version_args: list[str], pattern: re.Pattern[str]
    ) -> ResolvedTool:
        if self.env.get(env):
            return self._explicit(pin.name, env, version_args, pattern)
        cached = self._cached_path(pin)
        if cached.is_file():
            self._verify_cached(pin, cached)
            return ResolvedTool(pin.name, cached, pin.version, "cache")
        on_path = self.which(pin.name)
        if on_path is not None:
            found = self._version(Path(on_path), version_args, pattern)
            if found is not None and found.lstrip("v") == pin.version.lstrip("v"):
                return ResolvedTool(pin.name, Path(on_path), pin.version, "PATH")
        return self._download(pin)

    def _explicit(
        self, name: str, env: str, version_args: list[str], pattern: re.Pattern[str]
    ) -> ResolvedTool:
        path = Path(self.env[env])
        if not path.is_file():
            raise BackendUnavailable(f"${env} is {path}, which is not a file")
        version = self._version(path, version_args, pattern) or "unknown version"
        return ResolvedTool(name, path, version, f"${env}")

    def _version(self, path: Path, args: list[str], pattern: re.Pattern[str]) -> str | None:
        done = self.runner.run([str(path), *args], timeout=30.0)
        match = pattern.search(done.stdout + done.stderr) if done.returncode == 0 else None
        return match.group(1) if match else None

    def _cached_path(self, pin: ToolPin) -> Path:
        suffix = ".exe" if self.platform[0] == "windows" else ""
        return self.cache / "tools" / f"{pin.name}-{pin.version}" / f"{pin.name}{suffix}"

    def _verify_cached(self, pin: ToolPin, path: Path) -> None:
        record = path.with_name(path.name + ".sha256")  # written at download
        words = record.read_text().split() if record.is_file() else []
        expected = words[0] if words else None
        actual = sha256_of(path.read_bytes())
        pinned_binary = pin.sha256 if pin.member is None else None  # kind: asset == binary
        if expected is None or actual != expected or actual != (pinned_binary or actual):
            raise BackendError(
                f"the cached {pin.name} {pin.version} at {path} does not match its recorded "
                f"SHA-256; delete {path.parent} and run again to download it afresh"
            )
        if self.pinned_only and words[1:] != [PINNED]:
            raise BackendUnavailable(
                f"the cached {pin.name} {pin.version} at {path} was checked only against the "
                f"checksum published beside it, and grading takes only tools whose SHA-256 "
                f"meshlab ships. {_unpinned(pin)}"
            )

    def _download(self, pin: ToolPin) -> ResolvedTool:
        if pin.sha256 is None and self.pinned_only:
            raise BackendUnavailable(_unpinned(pin))
        self.progress(f"downloading {pin.name} {pin.version} from {pin.url}")
        payload = self.downloader.fetch(pin.url)
        published = _published_digest(
            self.downloader.fetch(pin.checksum_url).decode("utf-8", "replace"), pin.checksum_url
        )
        expected = pin.sha256 or published
        actual = sha256_of(payload)
        if actual != expected or (pin.sha256 is not None and published != pin.sha256):
            raise BackendUnavailable(
                f"{pin.url} failed its SHA-256 check: got {actual}, expected {expected} "
                f"(published in {pin.checksum_url}: {published}). Nothing was installed."
            )
        if pin.sha256 is None:
            self.progress(
                f"warning: meshlab ships no SHA-256 for {pin.url}; it was checked only against "
                f"{pin.checksum_url}, from the same origin (this catches a broken download, "
                f"not a substituted release)"
            )
        binary = _extract(payload, pin) if pin.member else payload
        path = self._cached_path(pin)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(binary)
        Path(tmp.name).chmod(0o755)
        Path(tmp.name).replace(path)
        how = PINNED if pin.sha256 is not None else SAME_ORIGIN
        path.with_name(path.name + ".sha256").write_text(f"{sha256_of(binary)} {how}\n")
        return ResolvedTool(pin.name, path, pin.version, f"downloaded from {pin.url}")


def _unpinned(pin: ToolPin) -> str:
    env = ENV_KIND if pin.name == "kind" else ENV_ISTIOCTL
    return (
        f"meshlab ships no SHA-256 for {pin.name} {pin.version} ({pin.url}), and in grading "
        f"mode a checksum from the same origin as the download is not enough. Download it, "
        f"verify it against a digest you trust, and point ${env} at the binary."
    )


def _extract(archive: bytes, pin: ToolPin) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).name == pin.member:
                extracted = tar.extractfile(member)
                if extracted is not None:
                    return extracted.read()
    raise BackendUnavailable(f"{pin.url} does not contain {pin.member}")
