"""Tests of the S3 test server's process handling (run with `pytest benchmarks/`)."""

from __future__ import annotations

import gc
import os
import urllib.request
import warnings
from pathlib import Path

import pytest

pytest.importorskip("moto")

from benchmarks.s3server import MotoServer  # noqa: E402


def open_fds_to(path: Path) -> list[str]:
    """This process's file descriptors open on `path`."""
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                fds.append(fd)
        except OSError:
            continue  # the directory's own descriptor, closed meanwhile
    return fds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to list open files")
def test_the_server_log_is_written_by_the_server_and_not_held_open_here(tmp_path: Path) -> None:
    log = tmp_path / "moto.log"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with MotoServer(log=log) as server:
            gc.collect()  # an unclosed file object left behind is reported here
            assert open_fds_to(log) == []
            urllib.request.urlopen(server.url + "/moto-api/", timeout=10).close()
    assert [str(w.message) for w in caught if str(log) in str(w.message)] == []
    assert log.stat().st_size > 0  # the server's own output reached the file
    assert open_fds_to(log) == []
