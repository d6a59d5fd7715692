"""The `x-meshlab-hops` response header: the calls a stand-in made while serving a request.

Each entry is `{"host", "path", "upstream", "cluster", "status", "flags", "hops"}` (see the
issue-10 design), in call order, nested by the callee's own header. The backend turns it into
`Outcome.hops`, so it is the one channel through which the chain is observed: it must stay
small (at most MAX_ENTRIES entries in the whole tree, MAX_DEPTH levels) and must never let a
misbehaving downstream crash the caller (anything malformed is dropped, not raised).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

HEADER = "x-meshlab-hops"
UPSTREAM_HOST = "x-meshlab-upstream-host"
UPSTREAM_CLUSTER = "x-meshlab-upstream-cluster"
RESPONSE_FLAGS = "x-meshlab-response-flags"
MAX_ENTRIES = 32  # in the whole tree, counted depth first
MAX_DEPTH = 8  # the stand-in's own calls are depth 1
MAX_TEXT = 256  # per string field: a header far below Envoy's 60 KiB limit even when full
RAW_LIMIT = 65_536  # a header bigger than this is garbage by construction: not even parsed

Entry = dict[str, Any]


class Budget:
    """Entries left for one header: shared by every level of the tree as it is built."""

    def __init__(self, entries: int = MAX_ENTRIES) -> None:
        self.left = entries

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _text(value: object, default: str = "") -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else default


def _status(value: object) -> int | None:
    # bool is an int to Python, not a status to anyone
    ok = isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 999
    return value if ok else None  # type: ignore[return-value]


def entry(
    host: str,
    path: str,
    status: int | None,
    response_headers: Mapping[str, str],
    depth: int,
    budget: Budget,
) -> Entry:
    """One call's record; its `hops` are the callee's own header, parsed one level deeper."""
    nested = response_headers.get(HEADER)
    return {
        "host": _text(host),
        "path": _text(path),
        "upstream": _text(response_headers.get(UPSTREAM_HOST)),
        "cluster": _text(response_headers.get(UPSTREAM_CLUSTER)),
        "status": _status(status),
        "flags": _text(response_headers.get(RESPONSE_FLAGS), "-") or "-",
        "hops": parse(nested, depth + 1, budget) if nested else [],
    }


def parse(raw: str | None, depth: int = 1, budget: Budget | None = None) -> list[Entry]:
    """A downstream's header as entries at `depth` (1 = its top level); garbage gives []."""
    if not raw or len(raw) > RAW_LIMIT:
        return []
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON; `[[[[...` nested past the parser's stack
        return []
    return sanitize(data, depth, budget or Budget())


def sanitize(data: object, depth: int = 1, budget: Budget | None = None) -> list[Entry]:
    """Keep only well-formed entries, within the depth and entry caps; never raises."""
    budget = budget or Budget()
    if depth > MAX_DEPTH or not isinstance(data, list):
        return []
    kept: list[Entry] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("host"), str):
            continue
        if not budget.take():
            break
        kept.append(
            {
                "host": _text(item["host"]),
                "path": _text(item.get("path")),
                "upstream": _text(item.get("upstream")),
                "cluster": _text(item.get("cluster")),
                "status": _status(item.get("status")),
                "flags": _text(item.get("flags"), "-") or "-",
                "hops": sanitize(item.get("hops"), depth + 1, budget),
            }
        )
    return kept


def encode(entries: list[Entry]) -> str:
    """Compact ASCII JSON: header-safe whatever the paths contain."""
    return json.dumps(entries, separators=(",", ":"), ensure_ascii=True)
