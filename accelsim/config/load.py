"""Loading hardware configs: YAML files, SCALE-Sim .cfg files, or names in hwconfigs/."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from accelsim.config.hw import HwConfig
from accelsim.config.scalesim_cfg import hw_from_scalesim_cfg
from accelsim.config.validate import TOP_LEVEL, hw_from_dict
from accelsim.errors import ConfigError
from accelsim.paths import REPO_ROOT, find_bundled, list_bundled

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
    hwconfigs/ folders (`accelsim.paths`), then a relative path under the repo root."""
    given = Path(name)
    if given.exists():
        return given
    found = find_bundled(HWCONFIG_DIR, str(name), (".yaml",))
    if found is not None:
        return found
    if not given.is_absolute() and (REPO_ROOT / given).is_file():  # "hwconfigs/x.yaml" from elsewhere
        return REPO_ROOT / given
    shipped = list_bundled(HWCONFIG_DIR, (".yaml",))
    raise ConfigError(str(name), None, f"expected an existing file or a config name "
                      f"({', '.join(shipped) or 'none shipped'}); found no such file or name")


def read_text(path: Path) -> str:
    """The file's text; a ConfigError for a directory, a missing or a non-UTF-8 file."""
    file = str(path)
    if path.is_dir():
        raise ConfigError(file, None, "expected a file; found a directory")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, None, "expected an existing file; found no such file") from None
    except OSError as e:
        raise ConfigError(file, None, f"expected a readable file; found {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(file, None, f"expected a UTF-8 text file; found byte "
                          f"0x{data[e.start]:02x} at offset {e.start} (a binary file?)") from None


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys in a mapping instead of keeping the last."""

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


def parse_yaml(text: str, file: str | None = None) -> Any:
    """Parse YAML text; syntax errors and duplicate keys become a one-line ConfigError."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP_LEVEL
        problem = " ".join(str(x) for x in (e.problem, e.context and f"({e.context})") if x)
        if not isinstance(e, _DuplicateKeyError):
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
