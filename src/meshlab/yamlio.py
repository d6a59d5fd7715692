"""Safe YAML loading that remembers where every value came from.

Students get `istio-rules.yaml:14:9` in every message, so we compose YAML nodes ourselves
instead of calling `yaml.safe_load`: that keeps each node's position, rejects duplicate keys
(the API server's strict decoding does too) and bounds hostile input (alias bombs, deep
nesting, huge files) before any of it is expanded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshlab.errors import InputError, Location

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES_PER_FILE = 200_000
MAX_DEPTH = 64

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """One `---` document: plain data plus a position for every path in it."""

    path: Path
    index: int
    data: Any
    start: Location
    value_positions: dict[PathKey, Location] = field(default_factory=dict)
    key_positions: dict[PathKey, Location] = field(default_factory=dict)

    def locate(self, path: PathKey, *, prefer_key: bool = False) -> Location:
        """Position of `path`, or of its nearest ancestor that exists in the file."""
        probe = tuple(path)
        while True:
            if prefer_key and probe in self.key_positions:
                return self.key_positions[probe]
            if probe in self.value_positions:
                return self.value_positions[probe]
            if not probe:
                return self.start
            probe = probe[:-1]


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
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason})", Location(path, 1)) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def load_documents(path: Path, text: str | None = None) -> list[YamlDocument]:
    """All non-empty documents of a YAML file, with positions; InputError on anything unsafe."""
    source = read_text(path) if text is None else text
    loader = yaml.SafeLoader(source)
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
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", Location(path, 1)) from None
    finally:
        loader.dispose()
    return documents


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


_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, document: YamlDocument, budget: _Budget) -> None:
        self.loader = loader
        self.document = document
        self.budget = budget

    def convert(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.budget.spend(node)
        where = _location(self.document.path, node)
        if depth > MAX_DEPTH:
            raise InputError(f"YAML nested deeper than {MAX_DEPTH} levels", where)
        self.document.value_positions.setdefault(path, where)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if node.tag not in _PLAIN_TAGS:
            raise InputError(f"unsupported YAML tag {node.tag!r}", where)
        value = self.loader.construct_object(node, deep=True)
        # Kubernetes reads timestamps as strings; so do we, to keep JSON reports plain.
        return node.value if node.tag == "tag:yaml.org,2002:timestamp" else value

    def _mapping(self, node: yaml.MappingNode, path: PathKey, depth: int) -> dict[str, Any]:
        if node.tag not in ("tag:yaml.org,2002:map",):
            raise InputError(
                f"unsupported YAML tag {node.tag!r}", _location(self.document.path, node)
            )
        self.loader.flatten_mapping(node)  # YAML merge keys (<<), which kubectl accepts too
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            key_where = _location(self.document.path, key_node)
            if key in result:
                first = self.document.key_positions[(*path, key)]
                raise InputError(
                    f'duplicate key "{key}" (first defined at line {first.line})', key_where
                )
            self.document.key_positions[(*path, key)] = key_where
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        return result

    def _key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _PLAIN_TAGS:
            raise InputError(
                "mapping keys must be plain scalars", _location(self.document.path, node)
            )
        value = self.loader.construct_object(node)
        return value if isinstance(value, str) else str(node.value)


def iter_positions(document: YamlDocument) -> Iterator[tuple[PathKey, Location]]:
    """Every (path, position) pair; used by tests and by analyzers that scan a whole object."""
    yield from document.value_positions.items()
