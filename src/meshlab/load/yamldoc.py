"""What every YAML reader of meshlab shares: the document with its positions, the limits on
hostile input, the tags kept as plain data, and the fast reader of libyaml's events.

`yamlio` reads files; this module is the part of it that must not import it back.
"""

from __future__ import annotations

import math
import re
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from meshlab.errors import Location
from meshlab.records import dataclass

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


MAP_TAG = "tag:yaml.org,2002:map"
STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
NULL_TAG = "tag:yaml.org,2002:null"
VALUE_TAG = "tag:yaml.org,2002:value"  # a plain `=`: YAML 1.1 reserves it; kubectl reads "="
# Scalars read as the text written: strings, `=`, and timestamps (see _Converter.convert).
TEXT_TAGS = frozenset({STR_TAG, "tag:yaml.org,2002:value", "tag:yaml.org,2002:timestamp"})
PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
INT_LIMIT = 2**63
SURROGATES = re.compile("[\ud800-\udfff]")


class Fallback(Exception):
    """Something the event reader leaves to the node path: an anchor or alias, a merge key,
    an explicit tag, a duplicate key, a limit reached, a value that is an error."""


class EventReader:
    """The common case read straight from libyaml's events, without composing nodes first
    (composing is half the time of a course-sized folder). It builds the same data and
    positions as `_documents` + `_Converter` for plain YAML and gives up (`Fallback`) on
    anything else, which the node path then reads, or reports, as before."""

    def __init__(self, loader: Any, path: Path) -> None:
        self.loader = loader
        self.path = path
        self.nodes = 0
        self.document: YamlDocument | None = None
        # Plain scalars repeat (`name`, `port`, `8080`): each text is resolved and each
        # non-string value constructed once (they are immutable: None, bools, numbers).
        self._tags: dict[str, str] = {}
        self._values: dict[tuple[str, str], Any] = {}

    def documents(self) -> list[YamlDocument]:
        get = self.loader.get_event
        documents: list[YamlDocument] = []
        try:
            get()  # StreamStartEvent
            index = 0
            while not isinstance(get(), yaml.StreamEndEvent):  # a DocumentStartEvent
                root = get()
                if not (type(root) is yaml.ScalarEvent and self._tag(root) == NULL_TAG):
                    document = YamlDocument(
                        path=self.path, index=index, data=None, start=self._at(root)
                    )
                    self.document = document
                    document.data = self._value(root, (), 0)
                    documents.append(document)
                get()  # DocumentEndEvent
                index += 1
        finally:
            self.loader.dispose()
        return documents

    def _at(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.path, mark.line + 1, mark.column + 1)

    def _tag(self, event: Any) -> str:
        tag = event.tag
        if tag is not None and tag != "!":
            return tag  # type: ignore[no-any-return]
        if not event.implicit[0]:  # quoted, block or `!`-tagged: Resolver.resolve says str
            return STR_TAG
        text = event.value
        tag = self._tags.get(text)
        if tag is None:  # as PyYAML's Composer resolves an untagged scalar
            tag = self._tags[text] = self.loader.resolve(yaml.ScalarNode, text, event.implicit)
        return tag  # type: ignore[no-any-return]

    def _value(self, event: Any, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_FILE or depth > MAX_DEPTH or event.anchor is not None:
            raise Fallback
        assert self.document is not None
        mark = event.start_mark
        self.document.value_positions.setdefault(
            path, Location(self.path, mark.line + 1, mark.column + 1)
        )
        kind = type(event)
        if kind is yaml.ScalarEvent:
            return self._scalar(event, self._tag(event))
        if event.tag not in (None, "!"):
            raise Fallback
        get = self.loader.get_event
        if kind is yaml.SequenceStartEvent:
            items: list[Any] = []
            while type(item := get()) is not yaml.SequenceEndEvent:
                items.append(self._value(item, (*path, len(items)), depth + 1))
            return items
        if kind is not yaml.MappingStartEvent:  # an alias
            raise Fallback
        result: dict[str, Any] = {}
        keys = self.document.key_positions
        while type(key_event := get()) is not yaml.MappingEndEvent:
            self.nodes += 1
            if type(key_event) is not yaml.ScalarEvent or key_event.anchor is not None:
                raise Fallback
            key = self._key(key_event)
            if key in result:
                raise Fallback  # the node path names both lines
            key_mark: Any = key_event.start_mark
            keys[(*path, key)] = Location(self.path, key_mark.line + 1, key_mark.column + 1)
            result[key] = self._value(get(), (*path, key), depth + 1)
        return result

    def _scalar(self, event: Any, tag: str) -> Any:
        text = event.value
        if tag in TEXT_TAGS:
            if SURROGATES.search(text):
                raise Fallback
            return text
        known = self._values.get((tag, text), self)
        if known is not self:
            return known
        if tag not in PLAIN_TAGS:
            raise Fallback
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception:  # any error: the node path reports it in its words
            raise Fallback from None
        if isinstance(value, float) and not math.isfinite(value):
            raise Fallback
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
            raise Fallback
        self._values[(tag, text)] = value
        return value

    def _key(self, event: Any) -> str:
        tag = self._tag(event)
        if tag == MERGE_TAG:
            raise Fallback
        value = self._scalar(event, tag)
        return value if isinstance(value, str) else str(event.value)
