"""The hook scripts in hooks/: valid sh, marked as ours, and shipped in the wheel."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from gitmodel import hooks

PROJECT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", hooks.HOOK_NAMES)
def test_script_is_valid_sh_with_our_marker(name: str) -> None:
    path = PROJECT / "hooks" / name
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True).returncode == 0
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert f"{hooks.MARKER}{hooks.HOOK_VERSION}\n" in text
    assert hooks.is_ours(path)
    assert path.stat().st_mode & 0o111


def test_every_script_is_installed_by_the_package() -> None:
    doc = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    shipped = doc["tool"]["setuptools"]["data-files"]["share/git-model/hooks"]
    assert sorted(shipped) == sorted(f"hooks/{n}" for n in hooks.HOOK_NAMES)
    assert sorted(p.name for p in (PROJECT / "hooks").iterdir()) == sorted(hooks.HOOK_NAMES)
    assert hooks.scripts_dir() == PROJECT / "hooks"


def test_pre_commit_manifest_names_real_commands() -> None:
    import yaml

    manifest = yaml.safe_load((PROJECT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in manifest] == ["git-model-check", "git-model-no-raw-checkpoints"]
    for hook in manifest:
        assert hook["entry"].split()[0] == "git-model" and hook["language"] == "python"
