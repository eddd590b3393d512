"""docs/remotes.md is a test input: its configuration example is read as written, its JSON schemas are what the commands print."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import new_repo, make_safetensors

DOC = (Path(__file__).resolve().parents[2] / "docs" / "remotes.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert match, heading
    return match.group(1)


def _schema_keys(command: str) -> set[str]:
    text = _section("JSON output")
    start = text.index(f"`{command} --json`")
    doc = text[start: text.index("`.", start)]
    return set(re.findall(r'"([a-z_]+)":\s', doc[: doc.index("}") if command == "push" else len(doc)])) - {"object", "where", "detail"}


def test_the_configuration_example_is_read_as_written(tmp_path: Path) -> None:
    (example,) = re.findall(r"^```toml\n(.*?)^```$", _section("Configuration"), re.S | re.M)
    repo = new_repo(tmp_path / "repo", tmp_path / "home")
    (repo.path / ".gitmodel.toml").write_text(example)
    listed = repo.gm("remote", "-v").stdout.splitlines()
    assert listed == [
        "nas\t/mnt/nas/models/sentiment",
        "onprem\ts3://models/sentiment  (endpoint https://minio.internal:9000)",
        "origin\ts3://team-models/sentiment",
    ]


def test_the_json_schemas_are_what_push_and_fetch_print(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo", tmp_path / "home")
    make_safetensors(repo.path / "m.safetensors", {"w": (16, 16)})
    repo.gm("add", "-q", "m.safetensors")
    repo.commit("m")
    repo.gm("remote", "add", "origin", str(tmp_path / "remote"))
    pushed = json.loads(repo.gm("push", "--json").stdout)
    fetched = json.loads(repo.gm("fetch", "--json").stdout)
    assert set(pushed) == _schema_keys("push")
    assert set(fetched) == _schema_keys("fetch")
    assert pushed["schema"] == fetched["schema"] == 1
