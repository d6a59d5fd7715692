"""meshlab's `@dataclass`: the standard library's, with `__eq__`, `__hash__` and `__repr__`
written once for every class instead of compiled for each.

Python 3.11's `dataclasses` writes each generated method as source text and compiles it:
about 3.8 million instructions per frozen class (callgrind), and ~160 classes are made on the
way to `meshlab run`'s first request. `__eq__`, `__hash__` and `__repr__` are a third of that
and need nothing class-specific beyond the field names, so here they are closures over those
names (operator.attrgetter). Importing what a run imports went from 1.42 to 1.24 billion
instructions with this and the start-up trims made with it (bench/run.py, `startup`). The
results are the generated methods' (tests/unit/test_records.py holds them side by side), a
fraction of a microsecond slower per call. `__init__` and a frozen class's `__setattr__`
and `__delattr__` are still the standard library's: replacing them would slow every object's
construction (~2.5 times for a frozen one), the hot path of planning a large lab.

What differs from the standard library's: `__dataclass_params__` says `eq=False,
repr=False` (those methods are not its). `order=True` and any other option hand the class to
the standard library whole. `field`, `fields`, `replace` and `asdict` are the standard
library's and work as ever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["dataclass"]

T = TypeVar("T")


@overload
def dataclass(cls: type[T], /) -> type[T]: ...


@overload
def dataclass(
    *, frozen: bool = False, order: bool = False, kw_only: bool = False
) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(
    cls: type[T] | None = None,
    /,
    *,
    frozen: bool = False,
    order: bool = False,
    kw_only: bool = False,
) -> type[T] | Callable[[type[T]], type[T]]:
    """`dataclasses.dataclass` with eq and repr on (its defaults), `frozen`, `order`,
    `kw_only`; used bare or with arguments, as the standard library's."""

    def wrap(klass: type[T]) -> type[T]:
        if order:  # comparison methods: the standard library's, whole
            return dataclasses.dataclass(klass, frozen=frozen, order=True, kw_only=kw_only)
        return _methods_added(klass, frozen, kw_only)

    return wrap if cls is None else wrap(cls)


def _methods_added(klass: type[T], frozen: bool, kw_only: bool) -> type[T]:
    own = dict(vars(klass))  # what the class body defines, before processing
    klass = dataclasses.dataclass(klass, repr=False, eq=False, frozen=frozen, kw_only=kw_only)
    fields = dataclasses.fields(klass)  # type: ignore[arg-type]
    # the standard library's rules (dataclasses._process_class): a method the class body
    # writes is kept; __hash__ by its table for eq=True (_hash_action)
    methods: dict[str, object] = {}
    if "__repr__" not in own:
        methods["__repr__"] = _repr([f.name for f in fields if f.repr], klass)
    if "__eq__" not in own:
        methods["__eq__"] = _eq(_values([f.name for f in fields if f.compare]))
    body_hash = own.get("__hash__", dataclasses.MISSING)
    if body_hash is dataclasses.MISSING or (body_hash is None and "__eq__" in own):
        if frozen:
            hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
            methods["__hash__"] = _hash(_values(hashed))
        else:
            methods["__hash__"] = None  # mutable and comparable: unhashable
    for name, method in methods.items():
        setattr(klass, name, method)
    return klass


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple `(obj.a, obj.b, ...)` the generated methods compare and hash."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)  # a tuple for two names or more


def _eq(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __hash__


def _repr(names: list[str], klass: type[Any]) -> Callable[[Any], str]:
    @recursive_repr()  # a value that holds its own object shows "...", as the generated one
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.__class__.__qualname__}({shown})"

    __repr__.__qualname__ = f"{klass.__qualname__}.__repr__"
    return __repr__
