"""meshlab.records.dataclass against the standard library's, class by class: the same
equality, hash, repr, hashability, frozenness, fields and `replace`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from meshlab import records

Decorator = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]


def shapes(dataclass: Decorator) -> dict[str, tuple[type[Any], list[Any]]]:
    """Each shape of class meshlab writes, made with `dataclass`, and a few of its objects
    (equal ones, unequal ones, and ones differing only where comparison does not look)."""

    @dataclass(frozen=True)
    class Point:
        """Two fields."""

        x: int
        y: float = 0.0

    @dataclass(frozen=True)
    class Labelled:
        """Fields left out of comparison, hashing and repr."""

        name: str
        labels: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)
        seen: int = dataclasses.field(default=0, compare=False)
        secret: str = dataclasses.field(default="", repr=False)

    @dataclass
    class Mutable:
        """Not frozen: comparable and unhashable."""

        items: list[int] = dataclasses.field(default_factory=list)
        total: int = 0
        limit: ClassVar[int] = 3

    @dataclass(frozen=True)
    class One:
        """One field: compared as a 1-tuple (a NaN held equals itself, as in a tuple)."""

        value: float

    @dataclass(frozen=True)
    class Empty:
        """No field at all."""

    @dataclass(frozen=True)
    class Own:  # noqa: PLW1641 (the dataclass adds __hash__, as the standard library does)
        """A class body that writes __eq__ and __repr__ keeps them; __hash__ is added."""

        key: str
        extra: int = 0

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Own) and other.key == self.key

        def __repr__(self) -> str:
            return f"Own<{self.key}>"

    @dataclass(frozen=True)
    class Hashing:
        """A class body that writes __hash__ keeps it."""

        key: str

        def __hash__(self) -> int:
            return 7

    @dataclass(frozen=True)
    class Child(Point):
        """Inherited fields first."""

        z: int = 0

    @dataclass
    class Node:
        """Holds itself: repr shows `...` there."""

        name: str
        children: list[Any] = dataclasses.field(default_factory=list)

    @dataclass(frozen=True, kw_only=True)
    class Keywords:
        """Keyword-only fields."""

        a: int
        b: int = 2

    nan = math.nan
    node = Node("root")
    node.children.append(node)
    return {
        "Point": (Point, [Point(1), Point(1, 0.0), Point(2), Point(1, 2.5), Point(-0, -0.0)]),
        "Labelled": (
            Labelled,
            [
                Labelled("a"),
                Labelled("a", {"x": "1"}, 5, "s"),
                Labelled("a", {}, 9),
                Labelled("b"),
            ],
        ),
        "Mutable": (Mutable, [Mutable(), Mutable([1]), Mutable([1], 0), Mutable([], 2)]),
        "One": (One, [One(nan), One(1.0), One(1)]),
        "Empty": (Empty, [Empty(), Empty()]),
        "Own": (Own, [Own("k"), Own("k", 1), Own("j")]),
        "Hashing": (Hashing, [Hashing("a"), Hashing("b")]),
        "Child": (Child, [Child(1), Child(1, 0.0, 0), Child(1, 0.0, 3)]),
        "Node": (Node, [node, Node("leaf")]),
        "Keywords": (Keywords, [Keywords(a=1), Keywords(a=1, b=2), Keywords(a=3)]),
    }


STD = shapes(dataclasses.dataclass)
OURS = shapes(records.dataclass)


def _hash_of(obj: Any) -> int | str:
    try:
        return hash(obj)
    except TypeError as exc:
        return f"TypeError: {exc}"


def _behaviour(cls: type[Any], objects: list[Any]) -> dict[str, Any]:
    """What a caller can see of the class and its objects."""
    fields = [(f.name, f.compare, f.hash, f.repr, f.init) for f in dataclasses.fields(cls)]
    return {
        "equal": [[a == b for b in objects] for a in objects],
        "not_equal": [[a != b for b in objects] for a in objects],
        "to_other_types": [obj == (1,) for obj in objects],
        "hash": [_hash_of(obj) for obj in objects],
        "repr": [repr(obj).replace(cls.__qualname__, "CLS") for obj in objects],
        "fields": fields,
        "match_args": getattr(cls, "__match_args__", None),
        "is_dataclass": dataclasses.is_dataclass(cls),
    }


@pytest.mark.parametrize("shape", list(STD))
def test_the_same_equality_hash_and_repr_as_the_standard_library(shape: str) -> None:
    std_cls, std_objects = STD[shape]
    our_cls, our_objects = OURS[shape]
    assert _behaviour(our_cls, our_objects) == _behaviour(std_cls, std_objects)


@pytest.mark.parametrize("shape", [s for s in STD if s not in ("Mutable", "Node")])
def test_a_frozen_object_refuses_assignment_and_deletion(shape: str) -> None:
    for obj in OURS[shape][1]:
        for name in [f.name for f in dataclasses.fields(obj)] + ["other"]:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(obj, name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError):
                delattr(obj, name)


def test_replace_asdict_and_pickle_work_as_ever() -> None:
    import copy
    import pickle

    point = OURS["Point"][0](1, 2.0)
    moved = dataclasses.replace(point, y=3.0)
    assert (moved.x, moved.y) == (1, 3.0)
    assert dataclasses.asdict(moved) == {"x": 1, "y": 3.0}
    assert copy.deepcopy(moved) == moved
    labelled = OURS["Labelled"][1][1]
    assert copy.copy(labelled) == labelled
    # pickle needs the class at module level: one of meshlab's own
    from meshlab.backends.embedded.standins.pods import PodSpec

    pod = PodSpec("web-0", "default", "nginx:1", {"app": "web"}, (8080,))
    assert pickle.loads(pickle.dumps(pod)) == pod
    assert hash(pickle.loads(pickle.dumps(pod))) == hash(pod)


def test_order_goes_to_the_standard_library_whole() -> None:
    @records.dataclass(frozen=True, order=True)
    class Ranked:
        """Ordered by rank, then name."""

        rank: int
        name: str = ""

    assert sorted([Ranked(2), Ranked(1, "b"), Ranked(1, "a")]) == [
        Ranked(1, "a"),
        Ranked(1, "b"),
        Ranked(2),
    ]
    assert Ranked.__dataclass_params__.eq  # type: ignore[attr-defined]


def test_meshlab_uses_its_own_dataclass_everywhere() -> None:
    """The start-up saving holds only if no module falls back to the standard library's
    decorator (records.py itself aside); `field`, `replace` and the rest are welcome."""
    offenders = []
    for path in sorted((ROOT / "src" / "meshlab").rglob("*.py")):
        if path.name == "records.py" and path.parent.name == "meshlab":
            continue
        text = path.read_text(encoding="utf-8")
        if "dataclasses.dataclass" in text or any(
            line.startswith("from dataclasses import")
            and "dataclass" in [name.strip(",") for name in line.split()[3:]]
            for line in text.splitlines()
        ):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
