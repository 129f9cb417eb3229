"""Typed YAML configs with command-line overrides.

Every recipe (``sft``, ``train``, ``critic train``, ``run``) takes a pydantic model that forbids
unknown keys; `load_config` reads a YAML file into it, applies ``key=value`` overrides (dotted
for nested sections: ``optim.lr=3e-4``), and turns pydantic's errors into one message that names
the file and every offending key, or the ``key=value`` override as typed when the problem is in
an override. Values in overrides are parsed as YAML scalars, so ``max_steps=200`` is an int and
``bf16=true`` a bool. Files that are not YAML text (binary, or an alias bomb) are refused with
the file named.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def _device_name(value: str) -> str:
    # Only the spelling is checked here: whether CUDA exists is known where the model loads
    # (`codefalcon.models.resolve_device`), so a GPU config still validates on a laptop.
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
    return value


DeviceName = Annotated[str, AfterValidator(_device_name)]
"""A ``device`` option: "auto", "cpu", "cuda" or "cuda:N" (a string; numbers are refused)."""


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key.

    ``keys``: where the problems are, as key paths under ``section`` (set by
    `config_from_mapping`), so that a section validated inside a larger config can still be
    traced to the override that caused it.
    """

    def __init__(self, message: str, section: str = "", keys: Sequence[tuple[str, ...]] = ()) -> None:
        super().__init__(message)
        self.section, self.keys = section, list(keys)


MAX_NODES = 100_000
"""Most YAML values a config may expand to. Real configs have hundreds; the limit is there for
alias bombs ("billion laughs"): a few lines whose nested aliases stand for billions of values.
safe_load builds them as shared objects in microseconds, but validating or dumping walks every
copy and never ends, so the expanded size is counted while composing, before anything walks it."""


class _TooLarge(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that counts each node with everything its aliases stand for."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> expanded size, for nodes composed so far

    def compose_node(self, parent: Any, index: Any) -> Any:
        is_alias = self.check_event(yaml.AliasEvent)
        node = super().compose_node(parent, index)
        if is_alias:
            if id(node) not in self._sizes:  # an alias inside its own anchor: infinitely deep
                raise _TooLarge("a recursive alias (an anchor used inside itself)")
            return node
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_NODES:
            raise _TooLarge(f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb?)")
        self._sizes[id(node)] = size
        return node


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are checked on assignment, and
    each field's docstring is its description (shown by ``--print-config`` tools and docs)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


def load_config(
    model: type[ConfigT], path: str | Path | None = None, overrides: Sequence[str] = ()
) -> ConfigT:
    """``model`` validated from the YAML at ``path`` (or defaults) plus ``overrides``.

    >>> from pydantic import Field
    >>> class C(StrictModel):
    ...     lr: float = 1e-3
    ...     steps: int = 10
    >>> load_config(C, None, ["steps=20"]).steps
    20
    """
    source = str(path) if path is not None else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml_mapping(Path(path))
    typed: dict[tuple[str, ...], str] = {}  # key path -> the override as the user typed it
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value, item)
        typed[tuple(key.split("."))] = item
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_blame(e, source, typed)) from None


def _blame(error: ValidationError, source: str, typed: Mapping[tuple[str, ...], str]) -> str:
    """The problems grouped by where they came from: an override (as typed) or the file.

    An override is to blame when its key and the error's location are one a prefix of the other
    (``optim.lr=1`` for an unknown section ``optim``, or ``lora=5`` for ``lora.r``).
    """
    by_source: dict[str, list[str]] = {}
    for item in error.errors():
        locs = [tuple(str(p) for p in item["loc"])]
        nested = (item.get("ctx") or {}).get("error")
        if isinstance(nested, ConfigError) and not item["loc"]:  # a section checked by a validator
            locs = [(*nested.section.split("."), *key) for key in nested.keys]
        culprits = [
            f"override {text!r}"
            for key, text in typed.items()
            if any(_prefixes(key, loc) for loc in locs if loc)
        ]
        by_source.setdefault(", ".join(culprits) or source, []).append(_describe(item))
    return "; ".join(f"{where}: {'; '.join(lines)}" for where, lines in by_source.items())


def _prefixes(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_BoundedLoader)  # a SafeLoader
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a config is YAML text in UTF-8)") from None
    except _TooLarge as e:
        raise ConfigError(f"{path}: refused: {e}") from None
    except yaml.reader.ReaderError as e:  # a character YAML does not allow, such as NUL
        where = f"character #x{e.character:04x} at byte {e.position}"
        raise ConfigError(f"{path}: not a text file ({where})") from None
    except yaml.MarkedYAMLError as e:
        where = f":{e.problem_mark.line + 1}:{e.problem_mark.column + 1}" if e.problem_mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({e.problem or e.context})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of option: value")
    return data


def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=3e-4"`` -> ``("optim.lr", 0.0003)``; the value is a YAML scalar or list."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like key=value (e.g. max_steps=100)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def set_dotted(data: dict[str, Any], key: str, value: Any, typed: str | None = None) -> None:
    """Set ``data[a][b] = value`` for ``key == "a.b"``, creating sections as needed.

    ``typed``: the override as the user wrote it, named in the error (default: ``key``)."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {typed or key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def format_errors(error: ValidationError) -> str:
    """pydantic's errors as ``key: problem`` lines, unknown keys said plainly."""
    return "; ".join(_describe(item) for item in error.errors())


def _describe(item: Any) -> str:
    key = ".".join(str(p) for p in item["loc"]) or "(top level)"
    if item["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if item["type"] == "value_error":  # a validator's own message already names the fix
        message = item["msg"].removeprefix("Value error, ")
        return message if not item["loc"] else f"{key}: {message}"
    return f"{key}: {item['msg']} (got {item.get('input')!r})"


def dump_config(config: BaseModel) -> str:
    """The whole config as YAML, every default spelled out (printed at start, saved with runs)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_from_mapping(model: type[ConfigT], data: Mapping[str, Any], source: str) -> ConfigT:
    """Validate an in-memory mapping (e.g. a section of a larger file), naming ``source``."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        keys = [tuple(str(p) for p in item["loc"]) for item in e.errors()]
        raise ConfigError(f"{source}: {format_errors(e)}", source, keys) from None
