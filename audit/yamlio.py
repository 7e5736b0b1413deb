"""YAML reading shared by rule packs, profiles and campaign files: safe, UTF-8, and strict about duplicate keys.

PyYAML keeps the last of two equal keys silently, so a pack with ``fail_if`` written twice would
judge by whichever came last without a word; here that is an error naming the key and its line.
Merge keys (``<<: *defaults``) work as YAML specifies: the mapping's own keys override merged ones.
"""

from __future__ import annotations

from pathlib import Path

import yaml


MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice, and merges ``<<`` keys as YAML specifies."""

    def __init__(self, stream):
        super().__init__(stream)
        self._flattened: set[int] = set()
        self._flattening: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Check ``node``'s own keys, then replace its merge key (``<<: *defaults`` or ``<<: [*a, *b]``) by the pairs
        it merges: a key given in the mapping overrides a merged one, and a mapping earlier in a merge list overrides
        a later one (YAML's merge key spec). Two equal keys written in one mapping, ``<<`` included, are an error.

        Replaces SafeConstructor.flatten_mapping (called by its construct_mapping, and here for each merged
        mapping), whose 6.0.x versions let the later of two merged mappings win or not depending on whether Python
        shares the key's string object. Merged pairs are deduplicated here, so the dict gets each key once."""
        if id(node) in self._flattened:  # an anchored mapping merged again: already checked and flattened
            return
        if id(node) in self._flattening:
            raise yaml.constructor.ConstructorError(None, None, "a mapping merges itself ('<<' of its own anchor)",
                                                    node.start_mark)
        self._flattening.add(id(node))
        merges = [k for k, _ in node.value if k.tag == MERGE_TAG]
        if len(merges) > 1:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '<<' (first at line {merges[0].start_mark.line + 1}); merge several "
                "mappings with one '<<: [*a, *b]'", merges[1].start_mark)
        value = next((v for k, v in node.value if k.tag == MERGE_TAG), None)
        explicit = [(k, v) for k, v in node.value if k.tag != MERGE_TAG]
        seen = self._refuse_duplicate_keys(explicit)
        sources = [] if value is None else value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"'<<' merges a mapping or a list of mappings, not a {source.id}", source.start_mark)
            self.flatten_mapping(source)
        merged = []
        for source in sources:  # earlier first: a key already seen (given here, or merged before) is kept
            for key_node, value_node in source.value:
                key = self.construct_object(key_node, deep=True)
                if key not in seen:
                    seen[key] = key_node.start_mark.line + 1
                    merged.append((key_node, value_node))
        node.value = merged + explicit
        self._flattened.add(id(node))

    def _refuse_duplicate_keys(self, pairs: list) -> dict:
        """The mapping's own keys (by value) with the line of each; a key written twice is an error naming both."""
        seen: dict = {}
        for key_node, _ in pairs:
            if key_node.tag == VALUE_TAG:  # the '=' key, read as a string as SafeConstructor reads it
                key_node.tag = "tag:yaml.org,2002:str"
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value",
                                                        key_node.start_mark) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return seen


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    # built at once (SafeLoader's own builds mappings lazily, which lets a mapping contain itself)
    return loader.construct_mapping(node, deep=deep)  # SafeConstructor's: flatten_mapping above, then build


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str):
    """Parse YAML text safely; duplicate mapping keys raise :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader derives from SafeLoader


def first_line(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: the problem and where it is."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        return f"{problem}" + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")
    return " ".join(str(exc).split())


def read_yaml(path: Path, error: type[Exception], cannot_read: str = "cannot read", missing: str | None = None,
              utf8_hint: str = ""):
    """Read and parse a YAML file; every way that fails is one ``error`` whose message starts with the path:
    ``not valid YAML: <where>``, ``not UTF-8 text (byte N)<utf8_hint>``, ``<cannot_read>: <why>``, and, when
    ``missing`` names the kind of file, ``no such <missing>`` for a file that does not exist."""
    return parse_yaml(read_bytes(path, error, cannot_read, missing), path, error, utf8_hint)


def read_bytes(path: Path, error: type[Exception], cannot_read: str = "cannot read", missing: str | None = None) -> bytes:
    """A file's bytes, or one ``error`` naming the path (see :func:`read_yaml`)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        if missing is None:
            raise error(f"{path}: {cannot_read}: {exc.strerror or exc}") from None
        raise error(f"{path}: no such {missing}") from None
    except OSError as exc:
        raise error(f"{path}: {cannot_read}: {exc.strerror or exc}") from None


def parse_yaml(raw: bytes, path: Path, error: type[Exception], utf8_hint: str = ""):
    """Parse YAML bytes read from ``path`` (for callers that also hash them); errors as :func:`read_yaml`."""
    try:
        return load_yaml(raw.decode("utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {first_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}){utf8_hint}") from None
    except RecursionError:  # '[[[[...' thousands deep: the parser recurses once per level
        raise error(f"{path}: not valid YAML: nested too deeply") from None
