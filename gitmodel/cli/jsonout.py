"""JSON for scripts: one encoding for every command, TOML dates written as RFC 3339 strings."""

from __future__ import annotations

import datetime
import json
from typing import Any


def dumps(doc: Any, indent: int | None = 2) -> str:
    """`doc` as sorted JSON; a pointer's TOML dates and times (metadata) become their ISO text."""
    return json.dumps(doc, indent=indent, sort_keys=True, default=_plain)


def _plain(value: object) -> str:
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
