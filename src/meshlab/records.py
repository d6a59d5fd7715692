"""meshlab's `@dataclass`: the standard library's fields, with the methods written once for
every class instead of compiled for each.

Python 3.11's `dataclasses` writes each generated method (`__init__`, `__repr__`, `__eq__`,
`__hash__`, a frozen class's `__setattr__` and `__delattr__`) as source text and compiles
it: about 3.8 million instructions per frozen class (callgrind), and ~160 classes are made on
the way to `meshlab run`'s first request, a quarter of its start-up. None of those methods
needs anything of its class but the field names and defaults, so here they are closures
over them. The standard library still reads the class (fields, defaults, `field()`,
`kw_only`, `__match_args__`, the checks on mutable defaults); only the method text is gone.
A class made in bulk (more than HOT_AFTER objects, such as a large lab's routes) gets its
`__init__` compiled after all, as the standard library writes it, so planning 2000 Services
takes what it took (bench `planning`); bench/startup.py counts what the start-up saves.

The methods behave as the generated ones (tests/unit/test_records.py holds them side by
side, shape by shape, Python's own TypeErrors included). Differences a caller could see:
- `__init__` fills the object's `__dict__` directly, as a frozen class's generated one does
  through `object.__setattr__` (no class here uses `__slots__` or a descriptor as a field);
  `inspect.signature` of a class not yet hot shows `(*args, **kwargs)`;
- `__dataclass_params__` says `init=False, eq=False, repr=False` (the methods are not its);
- `order=True` hands the class to the standard library whole; `InitVar` is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["dataclass"]

T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING
Values = Callable[[Any], tuple[Any, ...]]


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
    """`dataclasses.dataclass` with init, eq and repr on (its defaults), `frozen`, `order`,
    `kw_only`; used bare or with arguments, as the standard library's."""

    def wrap(klass: type[T]) -> type[T]:
        if order:  # comparison methods: the standard library's, whole
            return dataclasses.dataclass(klass, frozen=frozen, order=True, kw_only=kw_only)
        return _methods_added(klass, frozen, kw_only)

    return wrap if cls is None else wrap(cls)


def _methods_added(klass: type[T], frozen: bool, kw_only: bool) -> type[T]:
    own = dict(vars(klass))  # what the class body defines, before processing
    klass = dataclasses.dataclass(
        klass, init=False, repr=False, eq=False, frozen=False, kw_only=kw_only
    )
    fields = dataclasses.fields(klass)  # type: ignore[arg-type]
    pseudo = [f for f in klass.__dataclass_fields__.values() if f not in fields]  # type: ignore[attr-defined]
    if any("InitVar" in str(f.type) for f in pseudo):
        raise TypeError(f"{klass.__qualname__}: InitVar fields need dataclasses.dataclass")
    # the standard library's rules (dataclasses._process_class): a method the class body
    # writes is kept; __hash__ by its table for eq=True (_hash_action)
    methods: dict[str, object] = {}
    if "__init__" not in own:
        methods["__init__"] = _init(klass, fields)
    if "__repr__" not in own:
        methods["__repr__"] = _repr([f.name for f in fields if f.repr], klass)
    if "__eq__" not in own:
        methods["__eq__"] = _eq(_values([f.name for f in fields if f.compare]))
    body_hash = own.get("__hash__", _MISSING)
    if body_hash is _MISSING or (body_hash is None and "__eq__" in own):
        if frozen:
            hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
            methods["__hash__"] = _hash(_values(hashed))
        else:
            methods["__hash__"] = None  # mutable and comparable: unhashable
    if frozen:
        methods |= _frozen(klass, tuple(f.name for f in fields))
    for name, method in methods.items():
        setattr(klass, name, method)
    return klass


# calls of a class's closure __init__ after which it is compiled, as the standard library's
# is (a class made once or twice never pays the compiler; a class made in bulk, such as a
# large lab's routes and clusters, runs straight-line code again)
HOT_AFTER = 64


def _init(klass: type[Any], fields: Sequence[dataclasses.Field[Any]]) -> Callable[..., None]:
    """The generated `__init__`: the init fields by position (keyword-only ones by name) or
    by name, defaults and default factories for the rest, init=False fields with a factory
    filled too, then `__post_init__`. A closure until the class is made HOT_AFTER times or
    called wrongly (the compiled one raises Python's own TypeError), then compiled."""
    signature = _Signature(klass, fields)
    names, known, tails = signature.names, frozenset(signature.names), signature.tails
    positional, bound, later = signature.positional, signature.bound, signature.later
    post_init = hasattr(klass, "__post_init__")
    if not signature.in_order or "self" in signature.where:
        # fields assigned in another order than they bind (keyword-only ones before others,
        # init=False factories among them), or a field named `self`: compiled at once
        return signature.compiled()
    hot_after = HOT_AFTER
    calls = 0

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        values: Any = None
        if calls <= hot_after:
            if kwargs:
                if args or kwargs.keys() != known:
                    values = bound(args, kwargs)
                else:  # every field by name, in field order as the generated one assigns them
                    values = map(kwargs.__getitem__, names)
            elif len(args) <= positional and (tail := tails[len(args)]) is not None:
                values = args + tail
            else:
                values = bound(args, kwargs)
        if values is None:  # hot, or an error to raise: the compiled one from now on
            compiled = signature.compiled()
            klass.__init__ = compiled
            compiled(self, *args, **kwargs)
            return
        state = self.__dict__
        state.update(zip(names, values, strict=True))
        for name, factory in later:
            state[name] = factory()
        if post_init:
            self.__post_init__()

    __init__.__qualname__ = f"{klass.__qualname__}.__init__"
    return __init__


class _Signature:
    """The generated `__init__`'s parameters, what it binds, and the function itself."""

    def __init__(self, klass: type[Any], fields: Sequence[dataclasses.Field[Any]]) -> None:
        self.klass = klass
        self.fields = fields
        # parameters in the standard library's order (dataclasses._fields_in_init_order)
        given = [f for f in fields if f.init and not f.kw_only]
        given += [f for f in fields if f.init and f.kw_only]
        self.given = given
        self.names = tuple(f.name for f in given)
        self.where = {name: at for at, name in enumerate(self.names)}
        self.positional = sum(1 for f in given if not f.kw_only)
        self.defaults: list[tuple[Any, Any]] = [(f.default, f.default_factory) for f in given]
        self.later: list[tuple[str, Any]] = [
            (f.name, f.default_factory)
            for f in fields
            if not f.init and f.default_factory is not _MISSING
        ]
        assigned = [f.name for f in fields if f.init or f.default_factory is not _MISSING]
        self.in_order = assigned == [*self.names, *(name for name, _ in self.later)]
        # tails[k]: the values of fields k.. when each has a default and none a factory
        self.tails: list[tuple[Any, ...] | None] = []
        for start in range(len(given) + 1):
            rest = self.defaults[start:]
            plain = all(default is not _MISSING for default, _ in rest)
            self.tails.append(tuple(default for default, _ in rest) if plain else None)

    def bound(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | None:
        """Every init field's value as the generated signature binds them; None where it
        would raise (the compiled function then raises exactly that)."""
        if len(args) > self.positional:
            return None
        values: list[Any] = [*args, *[_MISSING] * (len(self.names) - len(args))]
        for key, value in kwargs.items():
            at = self.where.get(key)
            if at is None or at < len(args):
                return None
            values[at] = value
        for at, value in enumerate(values):
            if value is _MISSING:
                default, factory = self.defaults[at]
                if default is not _MISSING:
                    values[at] = default
                elif factory is not _MISSING:
                    values[at] = factory()
                else:
                    return None
        return values

    def compiled(self) -> Callable[..., None]:
        """The `__init__` the standard library would write (dataclasses._init_fn), compiled
        once: parameters with their defaults (a factory's behind a sentinel), `__dict__`
        filled in field order, the init=False factories, `__post_init__`."""
        env: dict[str, Any] = {"__missing": _MISSING}
        me = "__dataclass_self__" if "self" in self.where else "self"  # as dataclasses does
        params, values = [me], {}
        for at, f in enumerate(self.given):
            if f.kw_only and "*" not in params:
                params.append("*")
            default, factory = self.defaults[at]
            values[f.name] = f.name
            if default is not _MISSING:
                env[f"__default_{at}"] = default
                params.append(f"{f.name}=__default_{at}")
            elif factory is not _MISSING:
                env[f"__factory_{at}"] = factory
                params.append(f"{f.name}=__missing")
                values[f.name] = f"__factory_{at}() if {f.name} is __missing else {f.name}"
            else:
                params.append(f.name)
        for at, (name, factory) in enumerate(self.later):
            env[f"__later_{at}"] = factory
            values[name] = f"__later_{at}()"
        state = "__dataclass_state__"  # no field is named so (dataclasses reserves the prefix)
        body = [f"    {state} = {me}.__dict__"]
        body += [
            f"    {state}[{f.name!r}] = {values[f.name]}" for f in self.fields if f.name in values
        ]
        if hasattr(self.klass, "__post_init__"):
            body.append(f"    {me}.__post_init__()")
        source = f"def __init__({', '.join(params)}):\n" + "\n".join(body) + "\n"
        exec(source, env)  # noqa: S102 - our own text, from field names Python accepted
        function: Callable[..., None] = env["__init__"]
        function.__qualname__ = f"{self.klass.__qualname__}.__init__"
        return function


def _frozen(klass: type[Any], names: tuple[str, ...]) -> dict[str, object]:
    """A frozen class's `__setattr__` and `__delattr__` (its `__init__` never calls them)."""

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is klass or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(klass, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is klass or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(klass, self).__delattr__(name)

    return {"__setattr__": __setattr__, "__delattr__": __delattr__}


def _values(names: list[str]) -> Values:
    """The tuple `(obj.a, obj.b, ...)` the generated methods compare and hash."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return attrgetter(*names)  # a tuple for two names or more


def _eq(values: Values) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _hash(values: Values) -> Callable[[Any], int]:
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
