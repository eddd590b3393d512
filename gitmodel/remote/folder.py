"""A remote in a folder (a path or a file:// URL): a network share, a USB disk, another machine's mount."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitmodel.remote.base import ByteCounter, Remote, RemoteError, RemoteNotFound
from gitmodel.store.atomic import fsync_dir, temp_name, unlink_quietly, write_all

_COPY_BLOCK = 8 << 20


class FolderRemote(Remote):
    """Objects are files under `root`; each is written to `root/tmp/` and renamed into place."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def prepare(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemoteError(f"cannot create the remote folder {self.root}: {exc.strerror or exc}") from None
        self.sweep_temporaries()

    def sweep_temporaries(self, now: float | None = None) -> list[str]:
        """Delete the files in tmp/ older than gc's grace period; return their names.

        A push killed mid-object leaves its temporary there, and nothing else would ever
        remove it. A younger one may be a push running now in another clone, so it stays
        (the grace period is gc's: an hour with no write is no live upload).
        """
        import stat
        import time

        from gitmodel.gc import DEFAULT_GRACE

        tmp_dir = self.root / "tmp"
        cutoff = (time.time() if now is None else now) - DEFAULT_GRACE
        swept: list[str] = []
        try:
            entries = list(os.scandir(tmp_dir))
        except OSError:  # no tmp/ yet, or unreadable: nothing to sweep
            return swept
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                unlink_quietly(Path(entry.path))
                swept.append(entry.name)
        return swept

    def check(self) -> None:
        if not self.root.is_dir():
            raise RemoteError(
                f"remote folder {self.root} does not exist; push to it first, or fix the remote's url "
                f"with 'git model remote add --force'"
            )

    def list_keys(self, prefix: str) -> dict[str, int]:
        self.check()
        out: dict[str, int] = {}
        folder, _, start = prefix.rpartition("/")
        top = self._path(folder) if folder else self.root
        if not top.is_dir():
            return out
        for dirpath, dirnames, filenames in os.walk(top):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            rel = "" if rel == "." else rel + "/"
            if rel == "tmp/":
                dirnames[:] = []
                continue
            for name in filenames:
                key = rel + name
                if key.startswith(prefix):
                    try:
                        out[key] = os.stat(os.path.join(dirpath, name)).st_size
                    except FileNotFoundError:
                        pass
            if rel == "" and start:
                dirnames[:] = [d for d in dirnames if d.startswith(start)]
        return out

    def stat(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise RemoteNotFound(f"{key} is not on the remote {self.url}") from None
        except OSError as exc:
            raise RemoteError(f"cannot read {key} from the remote {self.url}: {exc.strerror}") from None

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError:
            raise RemoteNotFound(f"{key} is not on the remote {self.url}") from None
        try:
            size = os.fstat(fd).st_size
            # clipped to the file, as a server answers a range past the end: the caller sees a
            # short body; a remote index's numbers never size a buffer or overflow pread
            return [os.pread(fd, max(0, min(length, size - offset)), offset) if offset < size else b""
                    for offset, length in ranges]
        finally:
            os.close(fd)

    def put(self, key: str, source: Path | bytes, counter: ByteCounter | None = None) -> None:
        target = self._path(key)
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_dir / temp_name("put.")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                if isinstance(source, bytes):
                    write_all(fd, source)
                    if counter:
                        counter(len(source))
                else:
                    with open(source, "rb", buffering=0) as f:
                        while block := f.read(_COPY_BLOCK):
                            write_all(fd, block)
                            if counter:
                                counter(len(block))
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                unlink_quietly(tmp)
                raise
            os.close(fd)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except OSError as exc:
            raise RemoteError(f"cannot write {key} to the remote {self.url}: {exc.strerror or exc}") from None

    def delete(self, key: str) -> None:
        unlink_quietly(self._path(key))
