"""Reading a YAML config file: safe loading, one clear error per problem, no key given twice."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .fs import read_file

_SHORT_REPR = reprlib.Repr()


def _unique_key_loader(path: Path) -> type:
    """A SafeLoader that refuses a key given twice in one mapping (YAML 1.2 §3.2.1.1: keys are unique).

    PyYAML would keep the last value silently. Raises :class:`ConfigError` naming
    ``path``, the key and both lines. Merged keys (``<<: *anchor``) may still be overridden.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: the base class refuses it
                if first is not key_node.start_mark:
                    where = key_node.start_mark
                    raise ConfigError(
                        f"config file {path}: key {_SHORT_REPR.repr(key)} at line {where.line + 1}, column "
                        f"{where.column + 1} is given twice (first at line {first.line + 1}, column {first.column + 1}); keep one"
                    )
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_yaml(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (empty: ``{}``); ConfigError naming the file, line and problem."""
    import yaml

    try:
        text = read_file(path, "config file", ConfigError).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_unique_key_loader(path))  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: YAML nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data
