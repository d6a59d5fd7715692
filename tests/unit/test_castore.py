"""The mesh CA kept between runs (backends/embedded/castore.py): found where the user's
cache is, read without `cryptography`, renewed on Istio's schedule, never trusted when
tampered with or open to others, and consistent for runs that fill it at the same time."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509

from meshlab.backends.embedded.castore import (
    OFF_ENV,
    STORE_ENV,
    StoreUnusable,
    cached_certs,
    describe,
    fill_store,
    has_root,
    mesh_certs,
    store_path,
)
from meshlab.backends.embedded.certs import MeshCerts

A = "spiffe://cluster.local/ns/default/sa/default"
B = "spiffe://cluster.local/ns/default/sa/staff"
NOW = datetime.datetime(2026, 12, 2, 3, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def verify(certs: MeshCerts, spiffe: str, at: datetime.datetime) -> x509.Certificate:
    """The identity's leaf, checked as a peer's sidecar checks it: signed by the CA the run
    trusts, its only identity the SPIFFE URI, valid at `at`; its chain ends with that CA."""
    chain = x509.load_pem_x509_certificates(certs.of(spiffe).certificate.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    leaf = chain[0]
    leaf.verify_directly_issued_by(ca)
    assert chain[-1] == ca
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [spiffe]
    assert leaf.not_valid_before_utc <= at < leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    assert stat.S_IMODE(certs.of(spiffe).key.stat().st_mode) == 0o600
    return leaf


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({STORE_ENV: "/x/store", "XDG_CACHE_HOME": "/xdg", "HOME": "/h"}, "/x/store/mesh-ca"),
        ({"XDG_CACHE_HOME": "/xdg", "HOME": "/h"}, "/xdg/meshlab/mesh-ca"),
        ({"HOME": "/h"}, "/h/.cache/meshlab/mesh-ca"),
        ({STORE_ENV: "/x/store", OFF_ENV: "1"}, None),
        ({STORE_ENV: "/x/store", OFF_ENV: "0"}, "/x/store/mesh-ca"),
    ],
)
def test_the_store_is_where_the_users_cache_is(env: dict[str, str], expected: str | None) -> None:
    found = store_path(env)
    assert (None if found is None else str(found)) == expected


def test_a_filled_store_is_read_back_as_it_was_made(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    assert cached_certs(store, [A], NOW) is None
    assert not has_root(store, NOW)
    made = fill_store(store, [A, B], NOW)
    verify(made, A, NOW)
    verify(made, B, NOW)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert has_root(store, NOW)
    assert cached_certs(store, [A, B], NOW + HOUR) == made
    assert cached_certs(store, [A], NOW) == MeshCerts(made.ca, {A: made.of(A)})
    assert cached_certs(store, [A, "spiffe://cluster.local/ns/x/sa/y"], NOW) is None
    assert fill_store(store, [A, B], NOW + HOUR) == made  # nothing due: nothing made


def test_reading_the_store_does_not_import_cryptography(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    fill_store(store, [A], NOW)
    code = (
        "import sys, datetime\n"
        "from pathlib import Path\n"
        "from meshlab.backends.embedded.castore import cached_certs, has_root\n"
        f"now = datetime.datetime.fromisoformat({NOW.isoformat()!r})\n"
        f"assert has_root(Path({str(store)!r}), now)\n"
        f"assert cached_certs(Path({str(store)!r}), [{A!r}], now) is not None\n"
        "assert not [m for m in sys.modules if m.startswith('cryptography')]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_workload_certificate_is_renewed_once_half_its_life_is_gone(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    first = fill_store(store, [A], NOW)
    assert cached_certs(store, [A], NOW + 11 * HOUR) == first
    assert cached_certs(store, [A], NOW + 13 * HOUR) is None  # 24 h, renewed after 12 h
    renewed = fill_store(store, [A], NOW + 13 * HOUR)
    assert renewed.ca == first.ca  # the same root
    assert renewed.of(A).certificate != first.of(A).certificate  # a pair under new names
    verify(renewed, A, NOW + 13 * HOUR)
    assert first.of(A).certificate.exists()  # a run that read the old pair may still load it


def test_a_replaced_pair_goes_once_no_run_can_use_it(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    first = fill_store(store, [A], NOW)
    renewed = fill_store(store, [A], NOW + 13 * HOUR)
    for certs, made in ((first, NOW), (renewed, NOW + 13 * HOUR)):  # as if written then
        for path in (certs.of(A).certificate, certs.of(A).key):
            os.utime(path, (made.timestamp(), made.timestamp()))
    fill_store(store, [A], NOW + 25 * HOUR)  # renews again, and prunes
    assert not first.of(A).certificate.exists()  # unnamed, and older than any run's use
    assert not first.of(A).key.exists()
    assert renewed.of(A).certificate.exists()  # unnamed too, but a run may still load it


def test_a_root_with_a_fifth_of_its_life_left_is_replaced(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    first = fill_store(store, [A], NOW)
    eight_years = NOW + datetime.timedelta(days=int(3650 * 0.8) + 1)
    assert not has_root(store, eight_years)
    again = fill_store(store, [A], eight_years)
    assert again.ca.parent != first.ca.parent
    verify(again, A, eight_years)
    assert not first.ca.parent.exists()  # untouched for over a day and not current


@pytest.mark.parametrize("damage", ["leaf", "key", "root", "index-path", "index-json", "current"])
def test_a_store_not_as_its_index_says_is_made_again(tmp_path: Path, damage: str) -> None:
    store = tmp_path / "mesh-ca"
    made = fill_store(store, [A], NOW)
    identity = made.of(A)
    index = next(p for p in identity.certificate.parent.glob("*.json") if p.name != "root.json")
    if damage == "leaf":
        identity.certificate.write_bytes(identity.certificate.read_bytes()[:-10])
    elif damage == "key":
        identity.key.write_bytes(b"not a key")
    elif damage == "root":
        made.ca.write_bytes(made.ca.read_bytes().replace(b"A", b"B", 1))
    elif damage == "index-path":
        record = json.loads(index.read_text())
        record["cert"] = "../../../etc/passwd"
        index.write_text(json.dumps(record))
    elif damage == "index-json":
        index.write_text("{not json")
    else:
        (store / "current").write_text("../elsewhere\n")
    assert cached_certs(store, [A], NOW) is None
    again = fill_store(store, [A], NOW)
    verify(again, A, NOW)
    assert cached_certs(store, [A], NOW) == again


def test_a_store_open_to_others_is_not_used(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    made = fill_store(store, [A], NOW)
    store.chmod(0o755)
    assert cached_certs(store, [A], NOW) is None
    with pytest.raises(StoreUnusable, match="open to other users"):
        fill_store(store, [A], NOW)
    fresh = mesh_certs(store, tmp_path / "run", [A], NOW)  # the run makes its own
    assert fresh.ca.parent == tmp_path / "run"
    assert fresh.ca.read_bytes() != made.ca.read_bytes()
    verify(fresh, A, NOW)
    assert "open to other users" in describe(store, NOW)


def test_a_symlinked_store_is_not_used(tmp_path: Path) -> None:
    real = tmp_path / "real"
    fill_store(real, [A], NOW)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert cached_certs(link, [A], NOW) is None
    with pytest.raises(StoreUnusable, match="not a folder"):
        fill_store(link, [A], NOW)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away needs root")
def test_a_store_of_another_user_is_not_used(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    fill_store(store, [A], NOW)
    os.chown(store, 65534, 65534)
    assert cached_certs(store, [A], NOW) is None
    with pytest.raises(StoreUnusable, match="another user"):
        fill_store(store, [A], NOW)


def test_no_store_makes_a_fresh_ca_per_run(tmp_path: Path) -> None:
    one = mesh_certs(None, tmp_path / "one", [A], NOW)
    two = mesh_certs(None, tmp_path / "two", [A], NOW)
    assert one.ca.read_bytes() != two.ca.read_bytes()
    verify(one, A, NOW)
    assert "a fresh one per run" in describe(None, NOW)


def test_a_store_that_cannot_be_made_falls_back_to_a_fresh_ca(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    made = mesh_certs(blocker / "mesh-ca", tmp_path / "run", [A], NOW)
    assert made.ca.parent == tmp_path / "run"
    verify(made, A, NOW)


def test_runs_filling_one_store_at_once_each_get_a_consistent_set(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    got: list[MeshCerts] = []
    errors: list[BaseException] = []

    def fill() -> None:
        try:
            got.append(fill_store(store, [A, B], NOW))
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=fill) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for certs in got:  # whichever root each used, its pairs are signed by that root
        verify(certs, A, NOW)
        verify(certs, B, NOW)
    settled = cached_certs(store, [A, B], NOW)
    assert settled is not None
    verify(settled, A, NOW)


def test_doctor_says_where_the_ca_is_and_until_when(tmp_path: Path) -> None:
    store = tmp_path / "mesh-ca"
    assert "none kept yet" in describe(store, NOW)
    fill_store(store, [A, B], NOW)
    said = describe(store, NOW)
    assert "root valid until 2036-" in said
    assert "2 workload identities" in said


def test_no_home_folder_means_no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(homeless))
    assert store_path({}) is None
    assert store_path({STORE_ENV: "/x"}) == Path("/x/mesh-ca")
