"""A class of lab-2 submissions, written here: correct answers in several shapes, wrong,
broken and hostile ones, each with the points it must get. The instructor's lab is lab 2
with a starter istio-rules.yaml (the subsets, no canary): a submission that changes nothing
usable earns nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB2 = ROOT / "labs" / "2-traffic"
RULES = (LAB2 / "istio-rules.yaml").read_text()
FLEETMAN = (LAB2 / "fleetman.yaml").read_text()

STARTER = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: fleetman-staff-service
  namespace: default
spec:
  host: fleetman-staff-service
  subsets:
  - name: safe
    labels:
      version: safe
  - name: risky
    labels:
      version: risky
"""

FQDN = "fleetman-staff-service.default.svc.cluster.local"
REORDERED = """\
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: staff, namespace: default}
spec:
  host: fleetman-staff-service
  subsets:
  - {name: risky, labels: {version: risky}}
  - {name: safe, labels: {version: safe}}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: staff, namespace: default}
spec:
  hosts: [fleetman-staff-service]
  http:
  - route:
    - {destination: {host: fleetman-staff-service, subset: risky}, weight: 10}
    - {destination: {host: fleetman-staff-service, subset: safe}, weight: 90}
"""
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)
HOSTILE_LAB_YAML = """\
title: mine
manifests: [istio-rules.yaml]
checks:
  - {name: canary-split, kind: split, points: 100, expect: configured,
     request: {url: 'http://fleetman-staff-service:8080/'}, by: version}
"""


@dataclass(frozen=True)
class Submission:
    files: dict[str, str]
    points: float
    error: str | None = None  # a fragment of the error, when it cannot run
    ignored: tuple[str, ...] = ()  # the files listed as ignored
    extra: Callable[[Path], None] | None = None  # what plain files cannot express


def rules(*edits: tuple[str, str]) -> dict[str, str]:
    """The shipped istio-rules.yaml with these (old, new) replacements."""
    text = RULES
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    return {"istio-rules.yaml": text}


W50 = (("weight: 90", "weight: 50"), ("weight: 10", "weight: 50"))


def _symlink_out(folder: Path) -> None:
    (folder / "istio-rules.yaml").symlink_to(ROOT / "labs" / "2-traffic" / "istio-rules.yaml")
    (folder / "outside").symlink_to("/etc")


CLASS: dict[str, Submission] = {
    # correct, in several shapes
    "correct-as-shipped": Submission({"istio-rules.yaml": RULES}, 1),
    "correct-relative-9-1": Submission(
        rules(("weight: 90", "weight: 9"), ("weight: 10", "weight: 1")),
        1,
    ),
    "correct-fqdn-hosts": Submission(
        {
            "istio-rules.yaml": RULES.replace(
                "host: fleetman-staff-service", f"host: {FQDN}"
            ).replace("  - fleetman-staff-service\n", f"  - {FQDN}\n")
        },
        1,
    ),
    "correct-api-v1": Submission(
        rules(("networking.istio.io/v1beta1", "networking.istio.io/v1")),
        1,
    ),
    "correct-reordered-subsets": Submission({"istio-rules.yaml": REORDERED}, 1),
    # wrong
    "wrong-50-50": Submission(
        rules(*W50),
        0,
    ),
    "wrong-misspelled-host": Submission(
        rules(("  - fleetman-staff-service\n", "  - fleetman-staf-service\n")),
        0,
    ),
    "wrong-missing-subset": Submission(
        rules(("  - name: risky\n    labels:\n      version: risky\n", "")),
        0,
    ),
    "wrong-nothing-changed": Submission({}, 0),
    # broken
    "broken-yaml": Submission({"istio-rules.yaml": "kind: [VirtualService\n"}, 0, "invalid YAML"),
    "broken-empty": Submission({"istio-rules.yaml": "\n"}, 0, "istio-rules.yaml is empty"),
    # hostile
    "hostile-replicas-bomb": Submission(
        {**rules(), "fleetman.yaml": FLEETMAN.replace("replicas: 1", "replicas: 5000", 1)},
        0,
        "5006 pods requested (by 7 objects, the most Deployment default/position-simulator, "
        "fleetman.yaml:11: replicas: 5000); the limit is 64 (--max-pods)",
    ),
    "hostile-alias-bomb": Submission({"istio-rules.yaml": ALIAS_BOMB}, 0, "alias"),
    "hostile-python-tag": Submission(
        {"istio-rules.yaml": "!!python/object/apply:os.system [echo pwned]\n"}, 0, "tag"
    ),
    "hostile-symlink-out": Submission(
        {}, 0, None, ("istio-rules.yaml: a symlink", "outside: a symlink"), _symlink_out
    ),
    "hostile-own-lab-yaml": Submission(
        {
            **rules(*W50),
            "lab.yaml": HOSTILE_LAB_YAML,
            "conftest.py": "import os\nos.system('echo pwned')\n",
        },
        0,
        None,
        ("conftest.py: Python files", "lab.yaml: the instructor's lab.yaml"),
    ),
}


def instructor_lab(tmp: Path) -> Path:
    """Lab 2 as an instructor hands it out: the starter rules, the course's goal in lab.yaml."""
    lab = tmp / "2-traffic"
    shutil.copytree(LAB2, lab, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (lab / "istio-rules.yaml").write_text(STARTER)
    return lab


def write_class(tmp: Path, names: list[str] | None = None) -> Path:
    """The submissions folder, one subfolder per student (all of CLASS, or these)."""
    root = tmp / "submissions"
    for name in names or list(CLASS):
        folder = root / name
        folder.mkdir(parents=True)
        submission = CLASS[name]
        for file, text in submission.files.items():
            (folder / file).write_text(text)
        if submission.extra is not None:
            submission.extra(folder)
    return root
