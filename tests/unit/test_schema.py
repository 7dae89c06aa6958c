"""The exported JSON schema describes the same settings the deploy accepts."""

from __future__ import annotations

import json
import subprocess
import sys

from kdevbox.config import HostConfig


def test_schema_command_prints_every_setting() -> None:
    out = subprocess.run([sys.executable, "-m", "kdevbox.schema"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert set(schema["properties"]) == set(HostConfig.model_fields)
    assert schema["additionalProperties"] is False
    sendemail = schema["$defs"]["SendEmail"]["properties"]
    assert sendemail["smtp_port"]["anyOf"][0]["maximum"] == 65535
