"""Progress callbacks: how the library reports long work without printing anything."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int], None]
"""Called with a number of bytes just processed; must be cheap and thread-agnostic."""

ProgressFactory = Callable[[str, int], Progress]
"""Called once per file with (label, total bytes); returns the callback fed with bytes done."""
