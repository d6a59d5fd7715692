"""`python -I -m meshlab.backends.embedded.ca_worker`: the mesh's CA (certs.py, castore.py) in
a process of its own.

Importing `cryptography` costs ~0.1 s of CPU; in a thread of the run it held the run's own
start-up back (the GIL), here it is spent on the other core. A run starts the worker before
reading the lab when the store holds no usable root, or once the lab names an identity the
store has no current certificate for. The worker waits for one JSON line on stdin,
`{"store": PATH or null, "directory": PATH, "identities": [SPIFFE, ...]}`, fills the store
(or, without a usable one, writes a fresh CA in `directory`), answers with one line naming
the files, and exits. EOF first: it was not needed, it exits quietly.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.castore import mesh_certs
from meshlab.backends.embedded.certs import MeshCerts

MODULE = "meshlab.backends.embedded.ca_worker"


def certs_record(certs: MeshCerts) -> dict[str, Any]:
    """The answer line: where the CA and each identity's chain and key are."""
    return {
        "ca": str(certs.ca),
        "identities": {
            spiffe: [str(i.certificate), str(i.key)] for spiffe, i in certs.identities.items()
        },
    }


def main() -> int:
    # what signing imports, imported now, before anything waits for it
    from cryptography import x509  # noqa: F401
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401

    line = sys.stdin.readline()
    if not line:
        return 0
    try:
        request = json.loads(line)
        store = None if request.get("store") is None else Path(request["store"])
        directory = Path(request["directory"])
        identities = [str(s) for s in request["identities"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"ca_worker: bad request line: {exc}", file=sys.stderr)
        return 2
    now = datetime.datetime.now(datetime.UTC)
    certs = mesh_certs(store, directory, identities, now)
    sys.stdout.write(json.dumps(certs_record(certs)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
