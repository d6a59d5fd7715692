"""`python -I -m meshlab.backends.embedded.ca_worker`: the mesh's CA (certs.py) in a process
started before the lab is read.

Importing `cryptography` costs ~0.1 s of CPU; in a thread of the run it held the run's own
start-up back (the GIL), here it is spent on the other core while meshlab imports. The worker
then waits for one JSON line on stdin, `{"directory": PATH, "identities": [SPIFFE, ...]}`,
writes the CA and one certificate per identity there (fresh keys, as every run), answers
with one line naming the files, and exits. EOF first: it was not needed, it exits quietly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from meshlab.backends.embedded.certs import MeshCerts, write_mesh_certs

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
    # what write_mesh_certs imports, imported now, before anything waits for it
    from cryptography import x509  # noqa: F401
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: F401
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401

    line = sys.stdin.readline()
    if not line:
        return 0
    try:
        request = json.loads(line)
        directory = Path(request["directory"])
        identities = [str(s) for s in request["identities"]]
    except (ValueError, KeyError, TypeError) as exc:
        print(f"ca_worker: bad request line: {exc}", file=sys.stderr)
        return 2
    certs = write_mesh_certs(directory, identities)
    sys.stdout.write(json.dumps(certs_record(certs)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
