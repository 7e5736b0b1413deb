"""YAML reading shared by rule packs, profiles and campaign files: safe, UTF-8, and strict about duplicate keys.

PyYAML keeps the last of two equal keys silently, so a pack with ``fail_if`` written twice would
judge by whichever came last without a word; here that is an error naming the key and its line.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
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
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


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
