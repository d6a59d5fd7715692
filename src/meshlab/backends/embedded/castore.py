"""The mesh CA kept between runs, as a cluster keeps istiod's.

A cluster's root CA outlives its pods: istiod makes a self-signed root once (10 years) and
each sidecar's agent asks for a 24 h workload certificate, renewed once half of its life is
gone (pilot-agent's SECRET_GRACE_PERIOD_RATIO 0.5); the root is renewed when 20% of its life
is left (CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE). The embedded backend does
the same in a store under the user's cache folder, so a run whose identities are already
certified reads files and never imports `cryptography` (~0.1 s of CPU and a process).

    <cache>/mesh-ca/                      0700, owned by the user, or not used at all
      current                             the id of the root in use
      <id>/root.json, root-cert.pem, root-key.pem
      <id>/<sha256(spiffe)[:32]>.json     the identity's current pair, with its validity
      <id>/<sha256(spiffe)[:32]>-<n>.pem, .key

Every file is written under a new name and renamed into place, and a certificate's pair of
files is never rewritten: runs at the same time (a grading job's workers) each read a
consistent root and pair, whichever wins a race. An index whose files do not hash as it
says is a miss, made again. The store is `mesh-ca` in meshlab's cache folder (cachedir.py:
$MESHLAB_CACHE_DIR, else the platform's user cache); MESHLAB_NO_CACHE=1 turns it off, and a
run then makes a fresh CA in its own temporary folder (certs.write_mesh_certs).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from meshlab.backends.cachedir import ENV_CACHE, cache_dir
from meshlab.backends.embedded.certs import (
    WORKLOAD_TTL,
    Identity,
    MeshCerts,
    Validity,
    issue,
    make_root,
    write_mesh_certs,
)

STORE_ENV = ENV_CACHE
OFF_ENV = "MESHLAB_NO_CACHE"
ROOT_RENEW_LEFT = 0.2  # CITADEL_SELF_SIGNED_ROOT_CERT_GRACE_PERIOD_PERCENTILE (20%)
WORKLOAD_RENEW_LEFT = 0.5  # pilot-agent SECRET_GRACE_PERIOD_RATIO
_MARGIN = datetime.timedelta(minutes=10)  # a run that read a pair has long loaded it
_ID = re.compile(r"[0-9a-f]{32}")
_FILE = re.compile(r"[0-9a-f]{32}(-[0-9a-f]{16})?\.(pem|key)")


class StoreUnusable(OSError):
    """The store cannot be trusted or written: the run makes a fresh CA of its own."""


def store_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the mesh CA is kept (`mesh-ca` in meshlab's cache folder), or None when
    MESHLAB_NO_CACHE turns it off."""
    env = os.environ if env is None else env
    if env.get(OFF_ENV, "") not in ("", "0"):
        return None
    try:
        return cache_dir(env) / "mesh-ca"
    except RuntimeError:  # no home folder to be found (Path.home()): a CA per run
        return None


def cached_certs(
    store: Path, spiffe_ids: Iterable[str], now: datetime.datetime
) -> MeshCerts | None:
    """The store's root and a current certificate for every id, or None if any is missing,
    due for renewal or not as its index says. Reads files only (no `cryptography`)."""
    root = _current_root(store, now)
    if root is None:
        return None
    identities: dict[str, Identity] = {}
    for spiffe in set(spiffe_ids):
        found = _current_pair(root, spiffe, now)
        if found is None:
            return None
        identities[spiffe] = found
    return MeshCerts(root / "root-cert.pem", identities)


def has_root(store: Path, now: datetime.datetime) -> bool:
    """Whether the store holds a root a run can use as it is (a run then starts no CA
    process unless one of its identities turns out to be missing)."""
    return _current_root(store, now) is not None


def fill_store(store: Path, spiffe_ids: Iterable[str], now: datetime.datetime) -> MeshCerts:
    """The store's certificates for `spiffe_ids`, making what is missing or due: a root when
    there is none usable, then a pair per identity. StoreUnusable if it cannot be."""
    _ensure_private_folder(store)
    root = _current_root(store, now)
    if root is None:
        root = _new_root(store, now)
    identities: dict[str, Identity] = {}
    for spiffe in sorted(set(spiffe_ids)):
        identities[spiffe] = _current_pair(root, spiffe, now) or _new_pair(root, spiffe, now)
    _prune(store, root, now)
    return MeshCerts(root / "root-cert.pem", identities)


def mesh_certs(
    store: Path | None, directory: Path, spiffe_ids: Iterable[str], now: datetime.datetime
) -> MeshCerts:
    """The run's certificates: from the store (filled as needed), else a fresh CA written
    in `directory` when there is no store or it cannot be used."""
    ids = sorted(set(spiffe_ids))
    if store is not None:
        try:
            return fill_store(store, ids, now)
        except OSError:  # StoreUnusable, a full disk, a read-only home: a run of its own
            pass
    return write_mesh_certs(directory, ids, now)


def describe(store: Path | None, now: datetime.datetime) -> str:
    """One line for `meshlab doctor`: where the mesh CA is kept, and in what state."""
    if store is None:
        return f"mesh CA: a fresh one per run ({OFF_ENV} is set, or there is no home folder)"
    try:
        _check_private(store)
    except FileNotFoundError:
        return f"mesh CA: none kept yet; the next run makes one in {store}"
    except StoreUnusable as exc:
        return f"mesh CA: not kept ({exc}); each run makes a fresh one"
    root = _current_root(store, now)
    if root is None:
        return f"mesh CA: {store} holds no usable root; the next run makes one"
    record = _read_json(root / "root.json") or {}
    until = datetime.datetime.fromtimestamp(int(record.get("not_after", 0)), datetime.UTC)
    pairs = sum(1 for p in root.glob("*.json") if p.name != "root.json")
    certified = f"{pairs} workload {'identity' if pairs == 1 else 'identities'}"
    return f"mesh CA: {root} (root valid until {until:%Y-%m-%d}), {certified}"


def _current_root(store: Path, now: datetime.datetime) -> Path | None:
    try:
        _check_private(store)
        current = (store / "current").read_bytes()[:64].decode("ascii").strip()
    except (OSError, UnicodeError):
        return None
    if not _ID.fullmatch(current):
        return None
    root = store / current
    record = _read_json(root / "root.json")
    if record is None or not _fresh(record, now, ROOT_RENEW_LEFT):
        return None
    if not _hashes_match(root, record, ("root-cert.pem", "root-key.pem")):
        return None
    return root


def _current_pair(root: Path, spiffe: str, now: datetime.datetime) -> Identity | None:
    record = _read_json(root / f"{_slot(spiffe)}.json")
    if record is None or record.get("spiffe") != spiffe:
        return None
    cert, key = record.get("cert"), record.get("key")
    if not (isinstance(cert, str) and isinstance(key, str)):
        return None
    if not (_FILE.fullmatch(cert) and _FILE.fullmatch(key)):
        return None  # a name, never a path: nothing outside the store is read
    if not _fresh(record, now, WORKLOAD_RENEW_LEFT):
        return None
    if not _hashes_match(root, record, (cert, key)):
        return None
    return Identity(spiffe, root / cert, root / key)


def _new_root(store: Path, now: datetime.datetime) -> Path:
    """A root made in a folder of its own, then named `current` (a rename)."""
    ident = secrets.token_hex(16)
    root = store / ident
    root.mkdir(mode=0o700)
    cert, key = root / "root-cert.pem", root / "root-key.pem"
    validity = make_root(cert, key, now)
    _write_record(root / "root.json", _record(validity, root, (cert.name, key.name)))
    _replace_text(store / "current", ident + "\n")
    return root


def _new_pair(root: Path, spiffe: str, now: datetime.datetime) -> Identity:
    """A certificate and key under names never used before, then the index naming them."""
    slot = _slot(spiffe)
    name = f"{slot}-{secrets.token_hex(8)}"
    cert, key = root / f"{name}.pem", root / f"{name}.key"
    validity = issue(root / "root-cert.pem", root / "root-key.pem", spiffe, cert, key, now)
    made = _record(validity, root, (cert.name, key.name))
    _write_record(
        root / f"{slot}.json", {"spiffe": spiffe, "cert": cert.name, "key": key.name, **made}
    )
    return Identity(spiffe, cert, key)


def _prune(store: Path, root: Path, now: datetime.datetime) -> None:
    """Remove what no run can still use: a pair is valid for WORKLOAD_TTL from its making,
    so a root folder not current and untouched for longer, and a pair its index no longer
    names and older than that, can go (a run still going may use them until then)."""
    stale = now.timestamp() - (WORKLOAD_TTL + _MARGIN).total_seconds()
    for other in store.iterdir():
        if other == root or not _ID.fullmatch(other.name) or other.is_symlink():
            continue
        if other.is_dir() and other.stat().st_mtime < stale:
            shutil.rmtree(other, ignore_errors=True)
    named: set[str] = set()
    for index in root.glob("*.json"):
        record = _read_json(index) or {}
        named.update(str(record.get(k)) for k in ("cert", "key"))
    for old in root.glob("*-*.*"):
        if old.name not in named and _FILE.fullmatch(old.name) and old.stat().st_mtime < stale:
            old.unlink(missing_ok=True)


def _slot(spiffe: str) -> str:
    return hashlib.sha256(spiffe.encode()).hexdigest()[:32]


def _record(validity: Validity, folder: Path, names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "not_before": int(validity.not_before.timestamp()),
        "not_after": int(validity.not_after.timestamp()),
        "sha256": {name: _sha256(folder / name) for name in names},
    }


def _fresh(record: Mapping[str, Any], now: datetime.datetime, renew_left: float) -> bool:
    """Valid at `now`, with more than `renew_left` of its lifetime still ahead."""
    start, end = record.get("not_before"), record.get("not_after")
    if not (isinstance(start, int) and isinstance(end, int)) or end <= start:
        return False
    stamp = now.timestamp()
    return start <= stamp < end - renew_left * (end - start)


def _hashes_match(folder: Path, record: Mapping[str, Any], names: Iterable[str]) -> bool:
    hashes = record.get("sha256")
    if not isinstance(hashes, dict):
        return False
    try:
        return all(hashes.get(name) == _sha256(folder / name) for name in names)
    except OSError:
        return False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes()[:65536])
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_record(path: Path, record: Mapping[str, Any]) -> None:
    _replace_text(path, json.dumps(record, sort_keys=True) + "\n")


def _replace_text(path: Path, text: str) -> None:
    """Write under a new name, then rename over `path`: a reader sees the old or the new."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
    os.replace(partial, path)


def _ensure_private_folder(store: Path) -> None:
    try:
        store.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnusable(f"cannot make {store}: {exc.strerror or exc}") from None
    _check_private(store)


def _check_private(store: Path) -> None:
    """The folder keeps private keys: a real folder, the user's, closed to everyone else
    (as ssh asks of ~/.ssh). FileNotFoundError when it does not exist yet."""
    info = os.lstat(store)
    if not stat.S_ISDIR(info.st_mode):
        raise StoreUnusable(f"{store} is not a folder")
    if info.st_uid != os.geteuid():
        raise StoreUnusable(f"{store} belongs to another user")
    if info.st_mode & 0o077:
        raise StoreUnusable(f"{store} is open to other users (mode {info.st_mode & 0o777:o})")
