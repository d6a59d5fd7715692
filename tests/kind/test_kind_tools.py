"""Pinned tools: the Docker check, finding kind/istioctl, downloads with SHA-256 checks."""

from __future__ import annotations

import hashlib
import io
import re
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from kind_fakes import Events, FakeDownloader, FakeRunner

from meshlab.backends.kind import tools
from meshlab.backends.kind.tools import (
    NODE_IMAGE,
    Completed,
    SubprocessRunner,
    Tools,
    check_docker,
    istioctl_pin,
    kind_pin,
)
from meshlab.errors import BackendError, BackendUnavailable


def test_pins_are_the_supported_versions() -> None:
    assert tools.KIND_VERSION == "v0.32.0"
    assert NODE_IMAGE.startswith("kindest/node:v1.36.1@sha256:3489c767")
    assert tools.ISTIO_VERSION == "1.31.1"
    assert tools.SUPPORTED_ISTIO_VERSIONS == ("1.31.1", "1.30.5")


def test_release_urls() -> None:
    kind = kind_pin("linux", "amd64")
    assert kind.url == (
        "https://github.com/kubernetes-sigs/kind/releases/download/v0.32.0/kind-linux-amd64"
    )
    assert kind.checksum_url == kind.url + ".sha256sum"
    istioctl = istioctl_pin("1.31.1", "darwin", "arm64")
    assert istioctl.url == (
        "https://github.com/istio/istio/releases/download/1.31.1/istioctl-1.31.1-osx-arm64.tar.gz"
    )
    assert istioctl.checksum_url == istioctl.url + ".sha256"
    assert istioctl.member == "istioctl"
    with pytest.raises(BackendUnavailable, match="MESHLAB_ISTIOCTL"):
        istioctl_pin("1.31.1", "windows", "amd64")


# --- Docker ------------------------------------------------------------------------------


def test_docker_missing_says_what_to_install(runner: FakeRunner) -> None:
    with pytest.raises(BackendUnavailable) as info:
        check_docker(runner, which=lambda name: None)
    assert "no `docker` command" in str(info.value)
    assert "https://docs.docker.com/get-docker/" in str(info.value)
    assert "--kubeconfig" in str(info.value)
    assert runner.calls == []


def test_docker_without_engine_is_refused_with_what_docker_said(runner: FakeRunner) -> None:
    runner.on(
        "info",
        returncode=1,
        stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?\n",
    )
    with pytest.raises(BackendUnavailable) as info:
        check_docker(runner, which=lambda name: "/usr/bin/docker")
    assert runner.calls == [("/usr/bin/docker", "info", "--format", "{{.ServerVersion}}")]
    message = str(info.value)
    assert "needs a running Docker engine" in message
    assert "Cannot connect to the Docker daemon" in message
    assert "Install and start Docker" in message


def test_docker_engine_version(runner: FakeRunner) -> None:
    assert check_docker(runner, which=lambda name: "/usr/bin/docker") == "29.1.0"


# --- the real runner (with this Python, never a cluster tool) ------------------------------


def test_subprocess_runner_captures_and_times_out() -> None:
    runner = SubprocessRunner()
    done = runner.run([sys.executable, "-c", "print('out'); import sys; sys.exit(3)"], timeout=30)
    assert (done.returncode, done.stdout) == (3, "out\n")
    slow = runner.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert slow.returncode == -1
    assert "timed out" in slow.stderr
    missing = runner.run(["/nonexistent/meshlab-tool"], timeout=5)
    assert missing.returncode == -1
    assert "could not start" in missing.stderr


def test_failure_text_names_command_exit_and_output() -> None:
    done = Completed(("istioctl", "install", "-y"), 1, "", "line 1\nError: boom\n")
    text = done.failure("istioctl could not install Istio")
    assert "command: istioctl install -y" in text
    assert "exit code 1" in text
    assert "Error: boom" in text


# --- finding and downloading ---------------------------------------------------------------


def _tools(runner: FakeRunner, tmp_path: Path, files: dict[str, bytes], **kwargs: object) -> Tools:
    return Tools(
        runner,
        FakeDownloader(files),
        cache=tmp_path / "cache",
        env=kwargs.pop("env", {}),  # type: ignore[arg-type]
        which=kwargs.pop("which", lambda name: None),  # type: ignore[arg-type]
        platform_=("linux", "amd64"),
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def fake_kind_pin(monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes], None]:
    """Ship the digest of a fake kind binary for linux/amd64 instead of the real one."""

    def pin(binary: bytes) -> None:
        monkeypatch.setitem(tools.CHECKSUMS, ("kind", "v0.32.0", "linux", "amd64"), _sha(binary))

    return pin


def test_kind_is_downloaded_verified_and_cached(
    runner: FakeRunner, tmp_path: Path, fake_kind_pin: Callable[[bytes], None]
) -> None:
    binary = b"\x7fELF fake kind"
    fake_kind_pin(binary)
    pin = kind_pin("linux", "amd64")
    files = {pin.url: binary, pin.checksum_url: f"{_sha(binary)}  kind-linux-amd64\n".encode()}
    found = _tools(runner, tmp_path, files).kind()
    assert found.path == tmp_path / "cache" / "tools" / "kind-v0.32.0" / "kind"
    assert found.path.read_bytes() == binary
    assert found.path.stat().st_mode & 0o111
    assert found.source == f"downloaded from {pin.url}"
    again = _tools(runner, tmp_path, {}).kind()  # no download the second time
    assert (again.path, again.source) == (found.path, "cache")


def test_a_checksum_mismatch_installs_nothing(runner: FakeRunner, tmp_path: Path) -> None:
    pin = kind_pin("linux", "amd64")
    files = {pin.url: b"tampered", pin.checksum_url: f"{'0' * 64}  kind-linux-amd64\n".encode()}
    with pytest.raises(BackendUnavailable, match="failed its SHA-256 check"):
        _tools(runner, tmp_path, files).kind()
    assert not (tmp_path / "cache" / "tools" / "kind-v0.32.0" / "kind").exists()


def test_a_pinned_digest_must_match_the_published_one(
    runner: FakeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = b"kind"
    pin = kind_pin("linux", "amd64")
    monkeypatch.setattr(
        tools,
        "kind_pin",
        lambda os_name, arch: tools.ToolPin(**{**pin.__dict__, "sha256": "1" * 64}),
    )
    files = {pin.url: binary, pin.checksum_url: _sha(binary).encode()}
    with pytest.raises(BackendUnavailable, match="failed its SHA-256 check"):
        _tools(runner, tmp_path, files).kind()


def test_a_tampered_cache_is_refused(
    runner: FakeRunner, tmp_path: Path, fake_kind_pin: Callable[[bytes], None]
) -> None:
    binary = b"kind"
    fake_kind_pin(binary)
    pin = kind_pin("linux", "amd64")
    files = {pin.url: binary, pin.checksum_url: _sha(binary).encode()}
    found = _tools(runner, tmp_path, files).kind()
    found.path.write_bytes(b"changed")
    with pytest.raises(BackendError, match="does not match its recorded SHA-256"):
        _tools(runner, tmp_path, {}).kind()


def test_istioctl_comes_out_of_its_archive(runner: FakeRunner, tmp_path: Path) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"istioctl binary"
        info = tarfile.TarInfo("istioctl")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    pin = istioctl_pin("1.31.1", "linux", "amd64")
    payload = archive.getvalue()
    files = {pin.url: payload, pin.checksum_url: f"{_sha(payload)}  x.tar.gz".encode()}
    found = _tools(runner, tmp_path, files).istioctl("1.31.1")
    assert found.path.name == "istioctl"
    assert found.path.read_bytes() == b"istioctl binary"
    assert found.version == "1.31.1"


def test_on_path_only_at_the_pinned_version(
    runner: FakeRunner, tmp_path: Path, fake_kind_pin: Callable[[bytes], None]
) -> None:
    fake_kind_pin(b"kind")
    on_path = tmp_path / "bin" / "kind"
    on_path.parent.mkdir()
    on_path.write_text("")
    found = _tools(runner, tmp_path, {}, which=lambda name: str(on_path)).kind()
    assert (found.path, found.source) == (on_path, "PATH")
    assert runner.calls == [(str(on_path), "version")]
    runner.on("version", stdout="kind v0.20.0 go1.20 linux/amd64\n")
    binary = b"kind"
    pin = kind_pin("linux", "amd64")
    files = {pin.url: binary, pin.checksum_url: _sha(binary).encode()}
    newer = _tools(runner, tmp_path, files, which=lambda name: str(on_path)).kind()
    assert newer.source.startswith("downloaded")  # v0.20.0 on PATH is not the pinned one


def test_explicit_binaries_win(runner: FakeRunner, tmp_path: Path, events: Events) -> None:
    mine = tmp_path / "mine" / "istioctl"
    mine.parent.mkdir()
    mine.write_text("")
    found = _tools(runner, tmp_path, {}, env={"MESHLAB_ISTIOCTL": str(mine)}).istioctl("1.31.1")
    assert (found.path, found.source, found.version) == (mine, "$MESHLAB_ISTIOCTL", "1.31.1")
    with pytest.raises(BackendUnavailable, match="not a file"):
        _tools(runner, tmp_path, {}, env={"MESHLAB_KIND": str(tmp_path / "nope")}).kind()


def test_cache_dir_follows_the_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MESHLAB_CACHE_DIR", str(tmp_path))
    assert tools.cache_dir() == tmp_path
    monkeypatch.delenv("MESHLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert tools.cache_dir() == tmp_path / "xdg" / "meshlab"


def test_preflight_says_what_would_be_downloaded(runner: FakeRunner, tmp_path: Path) -> None:
    notes = _tools(runner, tmp_path, {}).preflight("1.31.1")
    assert notes == [
        f"kind v0.32.0 will be downloaded from {kind_pin('linux', 'amd64').url}",
        f"istioctl 1.31.1 will be downloaded from {istioctl_pin('1.31.1', 'linux', 'amd64').url}",
    ]
    assert runner.calls == []  # nothing is run or fetched to find out
    on_path = _tools(runner, tmp_path, {}, which=lambda name: f"/usr/local/bin/{name}")
    assert on_path.preflight("1.31.1") == []  # on PATH: the version is checked at the start


def test_preflight_refuses_what_cannot_be_had(runner: FakeRunner, tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match=r"\$MESHLAB_KIND is .* not a file"):
        _tools(runner, tmp_path, {}, env={"MESHLAB_KIND": str(tmp_path / "nope")}).preflight(
            "1.31.1"
        )
    odd = Tools(runner, FakeDownloader({}), cache=tmp_path, env={}, platform_=("linux", "386"))
    with pytest.raises(BackendUnavailable, match="amd64 and arm64 only"):
        odd.preflight("1.31.1")
    windows = Tools(
        runner, FakeDownloader({}), cache=tmp_path, env={}, platform_=("windows", "amd64")
    )
    with pytest.raises(BackendUnavailable, match="MESHLAB_ISTIOCTL"):
        windows.preflight("1.31.1")


# --- shipped checksums, and grading's refusal of the same-origin ones ----------------------


def test_kind_digests_ship_for_every_platform_it_is_downloaded_for() -> None:
    for os_name, arch in (
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
    ):
        pin = kind_pin(os_name, arch)
        assert pin.sha256 == tools.CHECKSUMS[("kind", "v0.32.0", os_name, arch)]
        assert pin.sha256 is not None
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256)
    assert kind_pin("linux", "amd64").sha256 == (
        "50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54"
    )
    # none could be corroborated for istioctl (docs/reference/backends.md says so)
    assert istioctl_pin("1.31.1", "linux", "amd64").sha256 is None
    assert not [key for key in tools.CHECKSUMS if key[0] == "istioctl"]


def test_the_shipped_digest_is_consulted_before_the_published_one(
    runner: FakeRunner, tmp_path: Path
) -> None:
    """A substituted release whose published checksum was replaced as well: the download
    agrees with its own origin and is refused all the same, because the shipped digest differs."""
    substituted = b"not the kind release"
    pin = kind_pin("linux", "amd64")
    files = {pin.url: substituted, pin.checksum_url: f"{_sha(substituted)}  kind\n".encode()}
    with pytest.raises(BackendUnavailable) as info:
        _tools(runner, tmp_path, files).kind()
    assert f"expected {pin.sha256}" in str(info.value)
    assert "Nothing was installed" in str(info.value)
    assert not (tmp_path / "cache" / "tools" / "kind-v0.32.0" / "kind").exists()


def test_a_cached_kind_is_held_to_the_shipped_digest(
    runner: FakeRunner, tmp_path: Path, fake_kind_pin: Callable[[bytes], None]
) -> None:
    """Cache and record rewritten together: the record agrees, the shipped pin does not."""
    fake_kind_pin(b"kind")
    pin = kind_pin("linux", "amd64")
    found = _tools(runner, tmp_path, {pin.url: b"kind", pin.checksum_url: _sha(b"kind").encode()})
    path = found.kind().path
    path.write_bytes(b"planted")
    path.with_name("kind.sha256").write_text(f"{_sha(b'planted')} pinned\n")
    with pytest.raises(BackendError, match="does not match its recorded SHA-256"):
        _tools(runner, tmp_path, {}).kind()


def _istioctl_files() -> tuple[dict[str, bytes], bytes]:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("istioctl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"ictl"))
    pin = istioctl_pin("1.31.1", "linux", "amd64")
    payload = archive.getvalue()
    return {pin.url: payload, pin.checksum_url: _sha(payload).encode()}, payload


def test_an_unpinned_download_says_its_check_is_same_origin(
    runner: FakeRunner, tmp_path: Path
) -> None:
    files, _ = _istioctl_files()
    said: list[str] = []
    found = Tools(
        runner,
        FakeDownloader(files),
        cache=tmp_path,
        env={},
        which=lambda name: None,
        platform_=("linux", "amd64"),
        progress=said.append,
    ).istioctl("1.31.1")
    assert any("ships no SHA-256" in line and "same origin" in line for line in said)
    assert found.path.with_name("istioctl.sha256").read_text().split()[1] == "same-origin"


def test_grading_refuses_a_tool_only_its_own_origin_vouches_for(
    runner: FakeRunner, tmp_path: Path
) -> None:
    files, _ = _istioctl_files()
    downloader = FakeDownloader(files)
    strict = Tools(
        runner,
        downloader,
        cache=tmp_path,
        env={},
        which=lambda name: None,
        platform_=("linux", "amd64"),
        pinned_only=True,
    )
    with pytest.raises(BackendUnavailable, match=r"ships no SHA-256 for istioctl 1\.31\.1") as info:
        strict.preflight("1.31.1")  # refused before anything runs or downloads
    assert "$MESHLAB_ISTIOCTL" in str(info.value)
    with pytest.raises(BackendUnavailable, match="same origin"):
        strict.istioctl("1.31.1")
    assert downloader.fetched == []
    # cached earlier without grading, verified same-origin only: refused when grading
    Tools(
        runner, FakeDownloader(files), cache=tmp_path, env={}, platform_=("linux", "amd64")
    ).istioctl("1.31.1")
    with pytest.raises(BackendUnavailable, match="checked only against the checksum"):
        strict.istioctl("1.31.1")
    # kind has a shipped digest: grading takes it
    assert strict.preflight("1.31.1") == [
        f"kind v0.32.0 will be downloaded from {kind_pin('linux', 'amd64').url}"
    ]
