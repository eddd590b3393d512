"""`git model` run in this process: the state machines' default runs, where a new Python per step would cost most of the time."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from gitmodel.cli import main as git_model_main


def gm_in_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`git model ARGV` through the console script's entry point (`gitmodel.cli.main`), in `cwd`
    with exactly `env` as the environment, its output captured: what `subprocess.run` would give."""
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                git_model_main(list(argv))
                code = 0
            except SystemExit as exc:
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        # the command's Workspace may sit in a reference cycle: collected now, its store's shared
        # lock and pack files are released as when a `git model` process exits (else gc and fsck,
        # which take the lock exclusively, would wait for this process to end)
        gc.collect()
    return subprocess.CompletedProcess(["git", "model", *argv], code, out.getvalue(), err.getvalue())
