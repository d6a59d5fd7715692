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

    @dataclass(frozen=True)
    class Made:
        """Factories, init=False fields (with a factory, a default, nothing) and a
        __post_init__ that normalises a frozen field and fills the bare one."""

        name: str
        tags: tuple[str, ...] = ()
        extra: dict[str, int] = dataclasses.field(default_factory=dict, hash=False)
        seen: list[int] = dataclasses.field(default_factory=list, init=False, compare=False)
        kind: str = dataclasses.field(default="made", init=False)
        size: int = dataclasses.field(init=False)

        def __post_init__(self) -> None:
            object.__setattr__(self, "tags", tuple(sorted(self.tags)))
            object.__setattr__(self, "size", len(self.name))

    @dataclass(kw_only=True)
    class Required:
        """Keyword-only and required, not frozen."""

        a: int
        b: list[int] = dataclasses.field(default_factory=list)

    @dataclass
    class Interleaved:
        """An init=False factory between init fields: assigned in field order."""

        first: int
        log: list[str] = dataclasses.field(default_factory=list, init=False)
        last: int = 2

    @dataclass(frozen=True)
    class Odd:
        """Fields named as the generated code's own names."""

        self: int
        state: str = "s"

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
        "Made": (Made, [Made("b"), Made("b", ("y", "x")), Made("b", ("x", "y"), {"k": 1})]),
        "Required": (Required, [Required(a=1), Required(a=1, b=[2]), Required(b=[], a=1)]),
        "Interleaved": (Interleaved, [Interleaved(1), Interleaved(1, 3)]),
        "Odd": (Odd, [Odd(1), Odd(self=1, state="t")]),
    }


# how each shape's constructor is called: (args, kwargs), the good and the bad
CALLS: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {
    "Point": [
        ((1,), {}),
        ((1, 2.0), {}),
        ((), {"x": 1}),
        ((), {"y": 2.0, "x": 1}),
        ((1,), {"y": 3.0}),
        ((), {}),
        ((1, 2.0, 3), {}),
        ((1,), {"x": 2}),
        ((), {"z": 1}),
    ],
    "Labelled": [(("a",), {}), (("a", {"k": "v"}, 1, "s"), {}), ((), {"name": "a", "seen": 2})],
    "Mutable": [((), {}), (([1],), {}), ((), {"total": 3}), (([1], 2, 3), {})],
    "Empty": [((), {}), ((1,), {}), ((), {"x": 1})],
    "Child": [((1,), {}), ((1, 2.0, 3), {}), ((1,), {"z": 4}), ((), {"z": 4})],
    "Keywords": [((), {"a": 1}), ((), {"a": 1, "b": 3}), ((1,), {}), ((), {"b": 3})],
    "Made": [
        (("abc",), {}),
        (("abc", ("z", "a")), {}),
        ((), {"name": "abc", "extra": {"k": 1}}),
        ((), {"name": "abc", "tags": ("b",), "extra": {}}),
        ((), {"name": "abc", "kind": "x"}),
        ((), {"name": "abc", "size": 1}),
        ((), {}),
    ],
    "Required": [((), {"a": 1}), ((), {"b": [1], "a": 2}), ((1,), {}), ((), {})],
    "Interleaved": [((1,), {}), ((1, 3), {}), ((), {"last": 1, "first": 0}), ((), {"log": []})],
    "Odd": [((1,), {}), ((), {"self": 1}), ((), {"state": "x", "self": 2}), ((), {})],
}


def _made(cls: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The object, as a caller sees it (its fields and __dict__), or the error's type."""
    try:
        obj = cls(*args, **kwargs)
    except TypeError as exc:  # Python's own words, as for the generated __init__
        return f"TypeError: {exc}".replace(cls.__qualname__, "CLS")
    return repr(obj).replace(cls.__qualname__, "CLS"), list(vars(obj).items())


@pytest.mark.parametrize("shape", list(CALLS))
def test_the_same_construction_as_the_standard_library(shape: str) -> None:
    std_cls, our_cls = STD[shape][0], OURS[shape][0]
    for args, kwargs in CALLS[shape]:
        assert _made(our_cls, args, kwargs) == _made(std_cls, args, kwargs), (args, kwargs)


def test_factories_give_each_object_its_own_value() -> None:
    first, second = OURS["Required"][0](a=1), OURS["Required"][0](a=1)
    assert first.b == second.b == []
    assert first.b is not second.b
    made = OURS["Made"][0]("x")
    assert made.seen == []
    assert made.seen is not OURS["Made"][0]("x").seen


def test_a_type_error_names_the_class_and_the_argument() -> None:
    point = shapes(records.dataclass)["Point"][0]  # a fresh class: its first call
    with pytest.raises(TypeError, match=r"Point.__init__\(\) missing 1 required positional"):
        point()
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'z'"):
        point(1, z=2)


@pytest.mark.parametrize("hot_after", [0, 1_000_000])
def test_closure_and_compiled_init_make_the_same_objects(
    hot_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before a class is hot its closure __init__ runs; after, the compiled one: both bind,
    fill and fail as the standard library's (fresh classes, so the threshold applies)."""
    monkeypatch.setattr(records, "HOT_AFTER", hot_after)
    ours = shapes(records.dataclass)
    for shape, calls in CALLS.items():
        for args, kwargs in calls:
            made = _made(ours[shape][0], args, kwargs)
            assert made == _made(STD[shape][0], args, kwargs), (shape, args, kwargs)


def test_initvar_is_refused_plainly() -> None:
    with pytest.raises(TypeError, match="InitVar"):

        @records.dataclass
        class Seeded:
            """An InitVar: this decorator does not pass them to __post_init__."""

            value: int
            seed: dataclasses.InitVar[int] = 0


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


MUTABLE = ("Mutable", "Node", "Required", "Interleaved")


@pytest.mark.parametrize("shape", [s for s in STD if s not in MUTABLE])
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
