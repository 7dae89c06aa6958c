"""From a pyinfra inventory to a validated HostConfig per host, with errors written for people.

pyinfra replaces a nested dict wholesale when a more specific level (group, host) sets the same key;
kdevbox merges nested settings instead, so a host can override `git.email` and keep the group's
`git.name`. Lists are replaced, not concatenated.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pyinfra.api.arguments import all_global_arguments
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory

from kdevbox.config import HostConfig
from kdevbox.secrets import redact

_CONNECTORS = get_all_connectors()
_PYINFRA_KEYS = frozenset(
    [name for name, _ in all_global_arguments()]
    + [key for connector in _CONNECTORS.values() for key in getattr(connector, "data_meta", {})]
)


def is_pyinfra_key(key: str) -> bool:
    """pyinfra's own host data (connection and execution settings), which is not kdevbox config."""
    return key.startswith("_") or key in _PYINFRA_KEYS or key.split("_", 1)[0] in _CONNECTORS


@dataclass(frozen=True)
class Problem:
    host: str
    field: str
    value: Any
    expected: str

    def __str__(self) -> str:
        shown = redact(self.value, key=self.field.rsplit(".", 1)[-1])
        return f"{self.host}: {self.field} = {shown!r}: {redact(self.expected)}"


class ConfigError(PyinfraError):
    """Settings that cannot be applied; raised before any operation is queued on any host."""

    def __init__(self, problems: Iterable[Problem], headline: str = "invalid kdevbox settings"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{headline}; nothing was changed on any host:\n{lines}")


def refusal(host: str, field: str, value: Any, expected: str, headline: str) -> ConfigError:
    """The one way a task refuses a setting for a host: which host, field and value, what was
    expected (and what to do), raised before the task queues any operation."""
    return ConfigError([Problem(host, field, value, expected)], headline=headline)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """override on top of base, recursing into dicts present on both sides."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def host_settings(host: Host) -> dict[str, Any]:
    """The kdevbox keys of one host's data, merged from general (all) to specific (override)."""
    inventory: Inventory = host.inventory
    layers = [
        inventory.get_data(),
        *(inventory.get_group_data(group) for group in host.groups),
        inventory.get_host_data(host.name),
        inventory.get_override_data(),
        host.data.override_datas,  # set on host.data by code at run time
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, {k: v for k, v in layer.items() if not is_pyinfra_key(k)})
    return merged


def _lookup(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _expected(error: Mapping[str, Any], valid_keys: Iterable[str]) -> str:
    if error["type"] == "extra_forbidden":
        name = str(error["loc"][-1])
        close = difflib.get_close_matches(name, list(valid_keys), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(sorted(valid_keys))}"
        return f"unknown setting{hint}"
    if error["type"] == "missing":
        return "required setting is missing"
    message = str(error["msg"])
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _model_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Field names valid at the parent of loc, for 'did you mean' hints."""
    model: Any = HostConfig
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if hasattr(c, "model_fields")), None)
        if model is None:
            return []
    return list(model.model_fields)


def validate_settings(name: str, settings: Mapping[str, Any]) -> tuple[HostConfig | None, list[Problem]]:
    """HostConfig for one host's settings, or the problems that stop it."""
    try:
        return HostConfig.model_validate(settings), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append(
                Problem(
                    host=name,
                    field=".".join(str(part) for part in loc) or "(settings)",
                    value=_lookup(settings, loc) if loc else error["input"],
                    expected=_expected(error, _model_keys(loc)),
                )
            )
        return None, problems


def validate_inventory(inventory: Inventory) -> dict[str, HostConfig]:
    """HostConfig for every host of the inventory; one ConfigError listing every problem otherwise."""
    configs: dict[str, HostConfig] = {}
    problems: list[Problem] = []
    for host in inventory:
        config, host_problems = validate_settings(host.name, host_settings(host))
        problems.extend(host_problems)
        if config is not None:
            configs[host.name] = config
    if problems:
        raise ConfigError(problems)
    return configs
