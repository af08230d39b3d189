"""Configs by (method, preset), with `key=value` overrides from the command line."""

import dataclasses
import types
import typing
from collections.abc import Sequence
from types import ModuleType

from edge_ssl.configs import (
    cross_and_learn_paper,
    cross_and_learn_small,
    cross_and_learn_tiny,
    cv_mim_paper,
    cv_mim_small,
    cv_mim_tiny,
    modist_paper,
    modist_small,
    modist_tiny,
    muscles_paper,
    muscles_small,
    muscles_tiny,
)
from edge_ssl.methods import base, registry

PRESETS = ("tiny", "small", "paper")  # the configs every method has
CONFIGS_METHODS = tuple(registry.METHODS)  # every method has a config of every preset (CONFIGS)
CONFIGS: dict[tuple[str, str], ModuleType] = {
    ("cross_and_learn", "tiny"): cross_and_learn_tiny,
    ("cross_and_learn", "small"): cross_and_learn_small,
    ("cross_and_learn", "paper"): cross_and_learn_paper,
    ("modist", "tiny"): modist_tiny,
    ("modist", "small"): modist_small,
    ("modist", "paper"): modist_paper,
    ("cv_mim", "tiny"): cv_mim_tiny,
    ("cv_mim", "small"): cv_mim_small,
    ("cv_mim", "paper"): cv_mim_paper,
    ("muscles", "tiny"): muscles_tiny,
    ("muscles", "small"): muscles_small,
    ("muscles", "paper"): muscles_paper,
}


def _parse(text: str, annotation, name: str):
    """`text` as a value of the field's type (int, float, bool, str, or one of them | None)."""
    options = (
        typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    )
    if type(None) in options and text.lower() in ("none", "null"):
        return None
    for kind in options:
        if kind is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
        elif kind in (int, float, str):
            try:
                return kind(text)
            except ValueError:
                continue
    raise ValueError(f"config override {name}={text!r}: not a valid {annotation}")


def apply_overrides(config: base.MethodConfig, overrides: Sequence[str]) -> base.MethodConfig:
    """`config` with `key=value` overrides applied (and validated by the config's own checks)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    values = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"config override {item!r} is not key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in fields or key in ("method",):
            known = ", ".join(sorted(k for k in fields if k != "method"))
            raise ValueError(
                f"config override: {type(config).__name__} has no field {key!r}; fields: {known}"
            )
        values[key] = _parse(text.strip(), hints[key], key)
    return dataclasses.replace(config, **values)


def load(method: str, preset: str, overrides: Sequence[str] = ()) -> base.MethodConfig:
    """The `preset` config of `method` ("tiny", "small" or "paper") with overrides applied."""
    if (method, preset) not in CONFIGS:
        methods = sorted({m for m, _ in CONFIGS})
        if method not in methods:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(methods)}")
        raise ValueError(f"unknown config {preset!r}; choose one of {', '.join(PRESETS)}")
    return apply_overrides(CONFIGS[(method, preset)].get_config(), overrides)


def from_run(run: dict) -> base.MethodConfig:
    """The config a training run was built with, from its `run.json` record (`method`, `preset`, `config`).

    run.json holds every field of the config it ran with, so a field it lacks was added to the config later: the run
    was built as that field's default (new fields default to the earlier behaviour), not as the preset's current
    value (MoDist's motion_width_divisor: 8 before `small` and `tiny` set 2 and 1). JSON's lists become tuples
    where the field is one; fields the config no longer has are ignored. Runs recorded before the preset had its
    name hold it as `size`, and are read as well.

    Raises:
      ValueError: an unknown method or preset, or stored values that do not build the config.
    """
    name = run.get("method")
    config = load(name, run.get("preset", run.get("size")))
    stored = {k: v for k, v in run.get("config", {}).items() if k != "method"}
    if "size" in stored and "preset" not in stored:
        stored["preset"] = stored.pop("size")
    fields = dataclasses.fields(config)
    values = {
        k: tuple(v) if isinstance(getattr(config, k), tuple) and isinstance(v, list) else v
        for k, v in stored.items()
        if k in {f.name for f in fields}
    }
    if stored:
        values.update(
            {
                f.name: f.default
                for f in fields
                if f.name not in stored and f.default is not dataclasses.MISSING
            }
        )
    try:
        return dataclasses.replace(config, **values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"its stored config does not build a {name} config: {e}") from e
