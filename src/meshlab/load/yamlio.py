"""Safe YAML loading that remembers where every value came from.

Students get `istio-rules.yaml:14:9` in every message, so we compose YAML nodes ourselves
instead of calling `yaml.safe_load`: that keeps each node's position, rejects duplicate keys
(the API server's strict decoding does too) and bounds hostile input (alias bombs, deep
nesting, huge files) before any of it is expanded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from meshlab.errors import InputError, Location
from meshlab.load.yamldoc import (
    INT_LIMIT,
    MAP_TAG,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES_PER_FILE,
    MERGE_TAG,
    PLAIN_TAGS,
    SEQ_TAG,
    STR_TAG,
    SURROGATES,
    VALUE_TAG,
    EventReader,
    Fallback,
    PathKey,
    YamlDocument,
)
from meshlab.records import dataclass

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES_PER_FILE",
    "EventReader",
    "Fallback",
    "PathKey",
    "YamlDocument",
    "iter_positions",
    "load_documents",
    "read_text",
]
from meshlab.load.yamlhints import hint_for


def read_text(path: Path) -> str:
    """Read a YAML file as UTF-8, refusing huge or unreadable files with a clear message."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not path.is_file():
        raise InputError(f"not a regular file: {path}")
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path} is {size} bytes; meshlab reads YAML files up to {MAX_FILE_BYTES} bytes",
            Location(path, 1),
        )
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is dropped, as kubectl does.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason})", Location(path, 1)) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def load_documents(path: Path, text: str | None = None) -> list[YamlDocument]:
    """All non-empty documents of a YAML file, with positions; InputError on anything unsafe.

    libyaml's parser (10x faster: a course section with Istio's install is ~1000 objects)
    reads the file when PyYAML has it, its events read straight into data (EventReader);
    a file with anchors, merge keys or anything wrong is read again by PyYAML's own parser
    and composer, so every message and hint is PyYAML's, as the tests know them."""
    source = read_text(path) if text is None else text
    if _FastLoader is not None and not _NON_PRINTABLE.search(source):
        try:
            return EventReader(_FastLoader(source, path), path).documents()
        except (Fallback, yaml.YAMLError, UnicodeError, ValueError, RecursionError):
            pass  # the slow path below says what is wrong, in PyYAML's words
    try:
        loader = _Loader(source, path)  # PyYAML checks for control characters right here
    except yaml.reader.ReaderError as exc:
        raise InputError(
            f"invalid YAML: unacceptable character #x{exc.character:04x} "
            "(control characters are not allowed)",
            _offset_location(path, source, exc.position),
        ) from None
    try:
        return _documents(loader, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and exc.context_mark is not mark:
            # "while parsing a flow sequence" points at the `[` that was never closed
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise InputError(f"invalid YAML: {problem}", where, hint=hint_for(exc, source)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", Location(path, 1)) from None
    except RecursionError:  # a last resort: the depth limits below should stop it first
        raise InputError(f"YAML nested deeper than {MAX_DEPTH} levels", Location(path, 1)) from None


def _documents(loader: Any, path: Path) -> list[YamlDocument]:
    documents: list[YamlDocument] = []
    budget = _Budget(path)
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None or _is_empty(node):
                index += 1
                continue
            document = YamlDocument(path, index, None, _location(path, node))
            document.data = _Converter(loader, document, budget).convert(node, (), 0)
            documents.append(document)
            index += 1
    finally:
        loader.dispose()
    return documents


class _DepthLimit:
    """A composer that refuses deep nesting before recursing into it.

    PyYAML composes nodes recursively: a few thousand `[` would otherwise end in a
    RecursionError (or worse) before the converter's depth check ever runs.
    """

    _path: Path
    _depth: int = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[attr-defined]
                raise InputError(
                    f"YAML nested deeper than {MAX_DEPTH} levels",
                    Location(self._path, mark.line + 1, mark.column + 1),
                )
            return super().compose_node(parent, index)  # type: ignore[misc,no-any-return]
        finally:
            self._depth -= 1


class _Loader(_DepthLimit, yaml.SafeLoader):
    """PyYAML's SafeLoader, pure Python: its messages are the ones the hints know."""

    def __init__(self, stream: str, path: Path) -> None:
        super().__init__(stream)
        self._path = path


_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
_FastLoader: Any = None
try:
    from yaml._yaml import CParser

    class _CLoader(_DepthLimit, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's parser under PyYAML's composer (so the depth limit above holds) and
        safe constructor: the same nodes as _Loader, with the same positions."""

        def __init__(self, stream: str, path: Path) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._path = path

    _FastLoader = _CLoader
except ImportError:  # PyYAML built without libyaml: the pure-Python parser does it all
    pass


def _offset_location(path: Path, source: str, offset: int) -> Location:
    line_start = source.rfind("\n", 0, offset) + 1
    return Location(path, source.count("\n", 0, offset) + 1, offset - line_start + 1)


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _location(path: Path, node: yaml.Node) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


@dataclass
class _Budget:
    """Counts nodes after alias expansion: a billion-laughs file stops here, not in RAM."""

    path: Path
    nodes: int = 0

    def spend(self, node: yaml.Node) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_FILE:
            raise InputError(
                f"YAML expands to more than {MAX_NODES_PER_FILE} nodes "
                "(an alias bomb, or far larger than any lab manifest)",
                _location(self.path, node),
            )


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, document: YamlDocument, budget: _Budget) -> None:
        self.loader = loader
        self.document = document
        self.budget = budget
        self._merged: dict[int, list[tuple[str, yaml.Node, yaml.Node]]] = {}
        self._merging: set[int] = set()

    def convert(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.budget.spend(node)
        where = _location(self.document.path, node)
        if depth > MAX_DEPTH:
            raise InputError(f"YAML nested deeper than {MAX_DEPTH} levels", where)
        self.document.value_positions.setdefault(path, where)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != SEQ_TAG:
                raise InputError(f"unsupported YAML tag {node.tag!r}", where)
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag == VALUE_TAG:
            return _plain_string(node.value, where)
        if node.tag not in PLAIN_TAGS:
            raise InputError(f"unsupported YAML tag {node.tag!r}", where)
        if node.tag == "tag:yaml.org,2002:timestamp":
            # Kubernetes reads timestamps as strings; so do we, to keep JSON reports plain
            # (and `2024-02-30` stays a string instead of an invalid date).
            return _plain_string(node.value, where)
        if node.tag == STR_TAG:  # most scalars: PyYAML's constructor would return the value
            return _plain_string(node.value, where)
        return _checked_scalar(self._construct(node, where), node, where)

    def _construct(self, node: yaml.Node, where: Location) -> Any:
        """PyYAML's constructor for a plain tag; a value the tag cannot hold (`!!int abc`,
        `!!bool maybe`, an int beyond Python's 4300-digit limit) is an input error."""
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            if "digits" in str(exc):  # Python's int_max_str_digits guard
                raise InputError(
                    f"integer {_clip(str(node.value))} is out of range "
                    "(Kubernetes integers are 64-bit)",
                    where,
                ) from None
            tag = node.tag.rsplit(":", 1)[-1]
            raise InputError(
                f"{_clip(str(node.value))!r} is not a valid {tag}", where, hint=_TAG_HINT
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        key_positions, file = self.document.key_positions, self.document.path
        for key, key_node, value_node in self._entries(node, 0):
            key_path = (*path, key)
            mark = key_node.start_mark
            key_positions[key_path] = Location(file, mark.line + 1, mark.column + 1)
            result[key] = self.convert(value_node, key_path, depth + 1)
        return result

    def _entries(self, node: yaml.Node, depth: int) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """A mapping's (key, key node, value node) after YAML merge keys (<<), as kubectl reads
        them: explicit keys win over merged ones, earlier merged mappings over later ones.

        Done here rather than by PyYAML's flatten_mapping, which copies every merged entry
        (exponential for nested merges of aliases) and keeps overridden keys as duplicates.
        Each mapping node is resolved once, so shared anchors cost nothing extra.
        """
        cached = self._merged.get(id(node))
        if cached is not None:
            return cached
        # The node's position is worked out only for a message: most mappings need none.
        if not isinstance(node, yaml.MappingNode):
            what = "list" if isinstance(node, yaml.SequenceNode) else "scalar"
            raise InputError(
                f"<< merges mappings only, not a {what}", _location(self.document.path, node)
            )
        if node.tag != MAP_TAG:
            raise InputError(
                f"unsupported YAML tag {node.tag!r}", _location(self.document.path, node)
            )
        if id(node) in self._merging or depth > MAX_DEPTH:
            raise InputError(
                "YAML merge keys (<<) nest too deeply or refer to themselves",
                _location(self.document.path, node),
            )
        self._merging.add(id(node))
        explicit: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            self.budget.spend(key_node)
            if key_node.tag == MERGE_TAG:
                is_list = isinstance(value_node, yaml.SequenceNode)
                merged.extend(value_node.value if is_list else [value_node])
                continue
            key = self._key(key_node)
            if key in explicit:
                first = _location(self.document.path, explicit[key][1])
                raise InputError(
                    f'duplicate key "{key}" (first defined at line {first.line})',
                    _location(self.document.path, key_node),
                )
            explicit[key] = (key, key_node, value_node)
        entries = list(explicit.values())
        for source in merged:
            for entry in self._entries(source, depth + 1):
                self.budget.spend(entry[1])
                if entry[0] not in explicit:
                    explicit[entry[0]] = entry
                    entries.append(entry)
        self._merging.discard(id(node))
        self._merged[id(node)] = entries
        return entries

    def _key(self, node: yaml.Node) -> str:
        if (  # nearly every key: a plain string
            node.tag == STR_TAG
            and isinstance(node, yaml.ScalarNode)
            and SURROGATES.search(node.value) is None
        ):
            return str(node.value)
        if isinstance(node, yaml.ScalarNode) and node.tag == VALUE_TAG:
            return str(node.value)
        if not isinstance(node, yaml.ScalarNode) or node.tag not in PLAIN_TAGS:
            raise InputError(
                "mapping keys must be plain scalars", _location(self.document.path, node)
            )
        if node.tag == "tag:yaml.org,2002:timestamp":
            return _plain_string(node.value, _location(self.document.path, node))
        where = _location(self.document.path, node)
        if node.tag == STR_TAG:
            return _plain_string(node.value, where)
        value = _checked_scalar(self._construct(node, where), node, where)
        return value if isinstance(value, str) else str(node.value)


# Kubernetes stores integers as 64-bit (and JSON numbers beyond that lose precision).
_MAX_SHOWN = 60
_TAG_HINT = "quote the value to make it a string, or write a value of that type"


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _plain_string(text: str, where: Location) -> str:
    if SURROGATES.search(text):
        raise InputError(
            "a string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF), which no UTF-8 "
            "file or JSON document can carry",
            where,
        )
    return text


def _checked_scalar(value: Any, node: yaml.Node, where: Location) -> Any:
    """What kubectl could send to the API server: JSON has no NaN or infinity, and
    Kubernetes integers are 64-bit; strings must be valid Unicode."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(
            f"{_clip(str(node.value))!r} is not a finite number "
            "(JSON, and so Kubernetes and meshlab, has no NaN or infinity)",
            where,
        )
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
        raise InputError(
            f"integer {_clip(str(node.value))} is out of range (Kubernetes integers are 64-bit)",
            where,
        )
    if isinstance(value, str):
        return _plain_string(value, where)
    return value


def iter_positions(document: YamlDocument) -> Iterator[tuple[PathKey, Location]]:
    """Every (path, position) pair; used by tests and by analyzers that scan a whole object."""
    yield from document.value_positions.items()
