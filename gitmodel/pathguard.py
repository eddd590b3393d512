"""Checkout never writes through a symbolic link: find one on the way to a file it would write."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def symlinked_parent(root: Path, rel: str) -> str | None:
    """The first folder of `rel`'s parents (below `root`) that is a symbolic link, as a
    `root`-relative path; None when every existing one is a real folder.

    A model folder replaced by a link to elsewhere (or a link inside it) would make a
    checkout write, and `--force` delete, files outside the repository. Folders that do not
    exist yet are fine: checkout creates them.
    """
    parts = rel.split("/")[:-1]
    path = root
    for i, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return "/".join(parts[: i + 1])
    return None
