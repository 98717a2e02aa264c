"""Loading hardware configs: YAML files, SCALE-Sim .cfg files, or names in hwconfigs/."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from accelsim.config.hw import HwConfig
from accelsim.config.scalesim_cfg import hw_from_scalesim_cfg
from accelsim.config.validate import TOP_LEVEL, hw_from_dict
from accelsim.errors import ConfigError
from accelsim.paths import find_bundled, find_relative, list_bundled

HWCONFIG_DIR = "hwconfigs"


def load_hw(path_or_name: str | os.PathLike) -> HwConfig:
    """A validated HwConfig from a YAML file, a SCALE-Sim .cfg file or a name in hwconfigs/."""
    path = find_hw(path_or_name)
    text = read_text(path)
    if path.suffix.lower() == ".cfg":
        return hw_from_scalesim_cfg(text, file=str(path))
    return hw_from_dict(parse_yaml(text, str(path)), file=str(path))


def find_hw(name: str | os.PathLike) -> Path:
    """Resolve a path or bare name: the path as given, then <name>.yaml in the bundled
    hwconfigs/ folders (`accelsim.paths`), then a relative path into a bundled folder
    (``hwconfigs/x.yaml`` from any working directory)."""
    given = Path(name)
    if given.exists():
        return given
    found = find_bundled(HWCONFIG_DIR, str(name), (".yaml",))
    if found is not None:
        return found
    relative = find_relative(given)  # "hwconfigs/x.yaml" from elsewhere
    if relative is not None:
        return relative
    shipped = list_bundled(HWCONFIG_DIR, (".yaml",))
    raise ConfigError(str(name), None, f"expected an existing file or a config name "
                      f"({', '.join(shipped) or 'none shipped'}); found no such file or name")


#: bounds of every YAML document accelsim reads (configs, recipes, graphs, sweep specs),
#: checked before anything is built: a hostile file fails fast instead of eating memory
MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_YAML_NODES = 500_000  # nodes after alias expansion, counted without expanding
MAX_YAML_DEPTH = 100  # nesting of sequences and mappings
MAX_INT_DIGITS = 40  # a longer integer literal is rejected before Python parses it

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def read_text(path: Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The file's text; a ConfigError for a directory, a missing, a huge or a non-UTF-8 file."""
    file = str(path)
    path = Path(path)
    if path.is_dir():
        raise ConfigError(file, None, "expected a file; found a directory")
    try:
        size = path.stat().st_size
        if path.is_file() and size > max_bytes:
            raise ConfigError(file, None, f"expected a text file of at most {max_bytes:,} bytes; "
                              f"found {size:,} bytes")
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(file, None, "expected an existing file; found no such file") from None
    except OSError as e:
        raise ConfigError(file, None, f"expected a readable file; found {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise ConfigError(file, None, f"expected a text file of at most {max_bytes:,} bytes; found more")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(file, None, f"expected a UTF-8 text file; found byte "
                          f"0x{data[e.start]:02x} at offset {e.start} (a binary file?)") from None


def load_yaml_file(path: str | os.PathLike) -> Any:
    """The one YAML reader of accelsim: read a file (bounded) and parse it with `parse_yaml`."""
    path = Path(path)
    return parse_yaml(read_text(path), str(path))


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _LimitError(yaml.MarkedYAMLError):
    """A document beyond a bound (size after alias expansion, nesting, a control character)."""


_FLOAT_1_2 = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$""")


class _UniqueKeyLoader(yaml.SafeLoader):
    """The strict SafeLoader every accelsim document goes through.

    - a duplicate key in a mapping is an error (not: the last one wins);
    - composing counts the nodes each alias would expand to, without expanding it: a document
      whose expansion exceeds MAX_YAML_NODES, or a recursive alias, is an error before any
      object is built (the "billion laughs" stays a few kilobytes);
    - nesting deeper than MAX_YAML_DEPTH, control characters in scalars, and integer
      literals of more than MAX_INT_DIGITS digits are errors;
    - floats in YAML 1.2 form without a dot (1e3, 5E-4) are floats, not strings.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._depth = 0

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _LimitError(None, None, "a recursive alias (an anchor used inside itself)", mark)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _LimitError(None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.ScalarNode):
            size = 1
            text = node.value
            bad = _CONTROL.search(text)
            if bad:
                from accelsim.config.validate import describe

                raise _LimitError(None, None, f"a control character U+{ord(bad.group()):04X} in "
                                  f"{describe(text)}", node.start_mark)
            if node.tag == "tag:yaml.org,2002:int" and len(text) > MAX_INT_DIGITS:
                raise _LimitError(None, None, f"an integer literal of {len(text)} characters (at most "
                                  f"{MAX_INT_DIGITS})", node.start_mark)
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(c)] for c in node.value)
        else:
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        if size > MAX_YAML_NODES:
            raise _LimitError(None, None, f"a document that expands to more than {MAX_YAML_NODES:,} "
                              "nodes (aliases counted as often as they are used)", node.start_mark)
        self._sizes[id(node)] = size
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: SafeLoader reports it
                continue
            if first is not None:
                raise _DuplicateKeyError(
                    None, None, f"a duplicate key {key!r} (first defined on line {first.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


def parse_yaml(text: str, file: str | None = None) -> Any:
    """Parse YAML text with the strict loader; every problem becomes a one-line ConfigError."""
    loader = None
    try:
        loader = _UniqueKeyLoader(text)
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP_LEVEL
        problem = " ".join(str(x) for x in (e.problem, e.context and f"({e.context})") if x)
        if not isinstance(e, (_DuplicateKeyError, _LimitError)):
            problem = f"a syntax error: {problem}"
        raise ConfigError(file, where, f"expected valid YAML; found {problem}") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        column = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise ConfigError(file, f"line {line}, column {column}", f"expected a text file; found "
                          f"unacceptable character #x{e.character:04x} (a binary file?)") from None
    except yaml.YAMLError as e:
        raise ConfigError(file, None, f"expected valid YAML; found {' '.join(str(e).split())}"
                          ) from None
    except RecursionError:
        raise ConfigError(file, None, f"expected valid YAML; found nesting too deep to read") from None
    except (ValueError, OverflowError) as e:  # a scalar the constructor cannot convert
        raise ConfigError(file, None, f"expected valid YAML; found a value that cannot be read "
                          f"({' '.join(str(e).split())[:120]})") from None
    finally:
        if loader is not None:
            loader.dispose()
