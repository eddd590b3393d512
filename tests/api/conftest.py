"""Fixtures of the Python API tests; `@pytest.mark.slow` tests run only with GITMODEL_SLOW=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test of full-size data; run with GITMODEL_SLOW=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("GITMODEL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="full-size test: run with GITMODEL_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") and HERE in Path(str(item.path)).parents:
            item.add_marker(skip)
