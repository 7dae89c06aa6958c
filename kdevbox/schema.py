"""Print HostConfig's JSON schema, so editors can complete and check kdevbox settings.

python -m kdevbox.schema > kdevbox-settings.schema.json
"""

from __future__ import annotations

import json

from kdevbox.config import HostConfig


def settings_schema() -> dict[str, object]:
    schema = HostConfig.model_json_schema()
    schema["title"] = "kdevbox host settings"
    return schema


if __name__ == "__main__":
    print(json.dumps(settings_schema(), indent=2))
