"""The file digests git-model has stored or written here, each with the manifest that rebuilds it.

Checkout may replace a file without --force only if the store can rebuild its bytes exactly;
status calls such a file "out of date" rather than "modified". Finding out means mapping the
file's BLAKE3 digest to a manifest, which the store (content-addressed by manifest id) cannot
do. This record does, in one look-up. It is only a hint: callers confirm with the store that
the manifest exists and rebuilds that digest, so a stale or damaged record can never make a
user's bytes look replaceable.

The file, `<git dir>/model-known-digests`, is append-only text: a header line, then one
`<file digest> <manifest id>` line per file version. Appending is cheap and a torn last line
(a crash mid-append) is skipped on reading.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HEADER = "# git-model known digests v1\n"
_LINE_RE = re.compile(r"(blake3:[0-9a-f]{64}) (blake3:[0-9a-f]{64})")


class KnownDigests:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._map = _load(path)
        self._new: dict[str, str] = {}

    def manifest_of(self, digest: str) -> str | None:
        """The manifest id recorded for a file digest, or None."""
        return self._new.get(digest) or self._map.get(digest)

    def record(self, digest: str, manifest_id: str) -> None:
        if self.manifest_of(digest) != manifest_id:
            self._new[digest] = manifest_id

    def save(self) -> None:
        """Append what was recorded since the last save. Callers hold the repository lock."""
        if not self._new:
            return
        lines = "".join(f"{d} {m}\n" for d, m in sorted(self._new.items()))
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                if os.fstat(fd).st_size == 0:
                    lines = HEADER + lines
                data = memoryview(lines.encode("ascii"))
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
        except OSError:
            return  # only a hint: without it an out-of-date file reads as modified, never worse
        self._map.update(self._new)
        self._new.clear()


def _load(path: Path) -> dict[str, str]:
    try:
        text = path.read_bytes().decode("ascii", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n"):
        m = _LINE_RE.fullmatch(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out
