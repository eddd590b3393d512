"""git-model: version machine-learning checkpoints in Git."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gitmodel.errors import GitModelError
    from gitmodel.repository import Repository, init, load_tensor, open
    from gitmodel.train.run import Checkpoint, Run

# The public API (docs/api.md), imported on first use: `import gitmodel` stays as cheap as
# the CLI needs it to be, since every `git model` command imports this package first.
_PUBLIC = {
    "Repository": "gitmodel.repository",
    "init": "gitmodel.repository",
    "open": "gitmodel.repository",
    "load_tensor": "gitmodel.repository",
    "Run": "gitmodel.train.run",
    "Checkpoint": "gitmodel.train.run",
    "GitModelError": "gitmodel.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'gitmodel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
