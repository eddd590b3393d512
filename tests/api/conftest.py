"""Fixtures of the Python API tests (the `slow` marker is registered in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
