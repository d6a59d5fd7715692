"""Envoy started before the lab is read, its listeners and clusters given afterwards, as
istiod gives a sidecar its config: first the process, then the resources (CDS, then LDS).

Here the resources come from files rather than a gRPC stream: Envoy's filesystem
subscription (`path_config_source`) reads `cds.json` and `lds.json` at start (empty) and again
whenever a new file is moved onto either path. So the ~0.1 s Envoy needs to load its binary
and initialise runs while meshlab still imports and reads the lab; what is left on the way to
the first request is Envoy taking the lab's resources (~0.06 s for lab 2).

The resources are exactly those of the static bootstrap (`render_mesh`); only the node, which
names no namespace yet, and two settings istiod's bootstrap always has differ (the RE2 program
size limit, the internal-listener extension), which a static bootstrap writes only when used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.envoy.stats import DEFERRED_STAT_OPTIONS, stats_config

CDS_FILE = "cds.json"
LDS_FILE = "lds.json"
LAB_VERSION = "lab"  # version_info of the lab's resources; the empty start files have "empty"
_T = "type.googleapis.com/envoy."
_CLUSTER = _T + "config.cluster.v3.Cluster"
_LISTENER = _T + "config.listener.v3.Listener"
NODE = {"id": "sidecar~127.0.0.1~meshlab-client~cluster.local", "cluster": "meshlab-client"}


def dynamic_bootstrap(folder: Path, stats_prefixes: Sequence[str] = ()) -> dict[str, Any]:
    """The bootstrap of an Envoy whose clusters and listeners come later, from `folder`."""
    return {
        "node": NODE,
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "cds_config": _file_source(folder / CDS_FILE),
            "lds_config": _file_source(folder / LDS_FILE),
        },
        "stats_config": stats_config(stats_prefixes),
        "deferred_stat_options": DEFERRED_STAT_OPTIONS,
        # pkg/bootstrap/config.go: istiod's bootstrap always raises RE2's program-size limit
        "layered_runtime": {
            "layers": [
                {
                    "name": "global config",
                    "static_layer": {"re2.max_program_size.error_level": "32768"},
                }
            ]
        },
        "bootstrap_extensions": [
            {
                "name": "envoy.bootstrap.internal_listener",
                "typed_config": {
                    "@type": _T + "extensions.bootstrap.internal_listener.v3.InternalListener"
                },
            }
        ],
    }


def _file_source(path: Path) -> dict[str, Any]:
    return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}


def write_empty_resources(folder: Path) -> None:
    """The files Envoy reads at start: no cluster, no listener yet."""
    _replace(folder / CDS_FILE, _discovery("empty", _CLUSTER, []))
    _replace(folder / LDS_FILE, _discovery("empty", _LISTENER, []))


def give_resources(folder: Path, config: Mapping[str, Any]) -> None:
    """Move the lab's clusters, then its listeners, onto the watched files (a rename, which
    Envoy's watch sees whole), in the order istiod sends them: a listener's routes then
    never name a cluster Envoy has not heard of."""
    resources = config["static_resources"]
    _replace(folder / CDS_FILE, _discovery(LAB_VERSION, _CLUSTER, resources["clusters"]))
    _replace(folder / LDS_FILE, _discovery(LAB_VERSION, _LISTENER, resources["listeners"]))


def _discovery(version: str, type_url: str, resources: Sequence[Any]) -> dict[str, Any]:
    return {
        "version_info": version,
        "resources": [{"@type": type_url, **r} for r in resources],
    }


def _replace(path: Path, payload: Mapping[str, Any]) -> None:
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
    os.replace(staged, path)
