"""Loading a config: preset <- file <- command-line options <- ``--set`` values, each layer
migrated from older releases' keys, then validated (unknown keys and bad values are one
line that names the key)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import tomllib
import yaml
from pydantic import ValidationError

from ..errors import UserError
from .migrate import migrate_config
from .presets import PRESET_DIR, list_presets
from .run import RunConfig


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        # utf-8-sig: a byte-order mark (some Windows editors write one) is not content
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UserError(f"config file {path} is not UTF-8 text (line {line} has byte "
                        f"0x{raw[exc.start]:02x}); save it with UTF-8 encoding") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:  # TOML/JSON errors: ValueError
        raise UserError(f"cannot parse {path}: {_parse_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config must be a mapping of sections")
    return data


_TOML_AT = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")


def _parse_problem(exc: Exception) -> str:
    """A parser's message as one line that starts with "line N, column M" (1-based), so
    the place of the mistake survives being printed as a single line."""
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = ": ".join(p for p in (exc.context, exc.problem) if p)
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    message = " ".join(str(exc).split())  # any other parser error: its lines joined
    found = _TOML_AT.match(message)
    if found:
        return f"line {found[2]}, column {found[3]}: {found[1]}"
    return message


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], origin: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise UserError(f"invalid config ({origin}): " + "; ".join(problems)) from None


def saved_run_config(data: Any) -> RunConfig | None:
    """A run folder's saved ``config.json`` as a :class:`RunConfig`, keys of older releases
    migrated; None when it is not a mapping or this version cannot read it (the caller
    decides what an unreadable config means).

    Example:
        >>> saved_run_config({"sae": {"train_steps": 200}}).sae.train.steps
        200
    """
    if not isinstance(data, dict) or not data:
        return None
    try:
        return RunConfig.model_validate(migrate_config(data))
    except (ValidationError, UserError):  # UserError: e.g. a judge this install lacks
        return None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with the value parsed as YAML (so 1, true, [1, 2] work)."""
    if "=" not in text:
        raise UserError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise UserError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return path, value


def load_config(path: str | Path | None = None, *, preset: str | None = None,
                overrides: dict[str, Any] | None = None,
                set_values: list[str] | None = None) -> RunConfig:
    """preset (file's ``preset`` key, else ``demo``) <- file <- overrides <- ``--set`` values."""
    file_data = _read_mapping(Path(path)) if path else {}
    preset_name = preset or file_data.get("preset") or "demo"
    if preset_name not in list_presets():
        raise UserError(f"unknown preset {preset_name!r}; presets: {', '.join(list_presets())}")
    data = migrate_config(_read_mapping(PRESET_DIR / f"{preset_name}.yaml"))
    data = _merge(data, migrate_config(file_data))
    data["preset"] = preset_name
    if overrides:
        data = _merge(data, migrate_config(overrides))
    for item in set_values or []:
        keys, value = parse_override(item)
        nested: dict[str, Any] = {}
        cursor = nested
        for k in keys[:-1]:
            cursor = cursor.setdefault(k, {})
        cursor[keys[-1]] = value
        data = _merge(data, migrate_config(nested))
    origin = str(path) if path else f"preset {preset_name}"
    return _validate(data, origin)
