"""What a deploy decided from a host's state, recorded on that host: verify reads the record instead
of deciding again from state that drifts (apt's candidate changes after an `apt-get update`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kdevbox.config import format_version, parse_version
from kdevbox.layout import NVIM_RELEASE_PREFIX


@dataclass(frozen=True)
class NeovimPlan:
    """What a host gets: neovim from apt or a release, its version, each plugin's url and ref."""

    source: str
    version: tuple[int, ...]
    plugins: dict[str, tuple[str, str]]

    @property
    def release_dir(self) -> str:
        return NVIM_RELEASE_PREFIX + format_version(self.version)

    def to_json(self) -> str:
        record = {"source": self.source, "version": format_version(self.version), "plugins": self.plugins}
        return json.dumps(record, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> NeovimPlan:
        record = json.loads(text)
        plugins = {name: (url, ref) for name, (url, ref) in record["plugins"].items()}
        return cls(record["source"], parse_version(record["version"]), plugins)
