"""Typed YAML configs with command-line overrides.

Every recipe (``sft``, ``train``, ``critic train``, ``run``) takes a pydantic model that forbids
unknown keys; `load_config` reads a YAML file into it, applies ``key=value`` overrides (dotted
for nested sections: ``optim.lr=3e-4``), and turns pydantic's errors into one message that names
the file and every offending key. Values in overrides are parsed as YAML scalars, so
``max_steps=200`` is an int and ``bf16=true`` a bool.
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
    """A config that cannot be used; the message names the file and the key."""


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
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {format_errors(e)}") from None


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``key == "a.b"``, creating sections as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def format_errors(error: ValidationError) -> str:
    """pydantic's errors as ``key: problem`` lines, unknown keys said plainly."""
    lines = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown key {key!r}")
        elif item["type"] == "value_error":  # a validator's own message already names the fix
            message = item["msg"].removeprefix("Value error, ")
            lines.append(message if not item["loc"] else f"{key}: {message}")
        else:
            lines.append(f"{key}: {item['msg']} (got {item.get('input')!r})")
    return "; ".join(lines)


def dump_config(config: BaseModel) -> str:
    """The whole config as YAML, every default spelled out (printed at start, saved with runs)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_from_mapping(model: type[ConfigT], data: Mapping[str, Any], source: str) -> ConfigT:
    """Validate an in-memory mapping (e.g. a section of a larger file), naming ``source``."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as e:
        raise ConfigError(f"{source}: {format_errors(e)}") from None
