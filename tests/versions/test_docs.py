"""The examples in docs/versions.md and docs/audit-format.md run as tests."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from conftest import Repo
from gitmodel.audit import decode

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def _fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, re.S | re.M)


def test_fences_are_closed() -> None:
    for doc in ("versions.md", "audit-format.md"):
        fences = [line for line in (DOCS / doc).read_text().splitlines() if line.startswith("```")]
        assert len(fences) % 2 == 0, doc


def test_audit_example_lines_are_valid_canonical_and_chained() -> None:
    text = _section((DOCS / "audit-format.md").read_text(), "Example")
    (block,) = _fenced(text, "json")
    first, second = block.splitlines()
    e1, e2 = decode(first), decode(second)
    for line, e in ((first, e1), (second, e2)):
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        # re-encoding the decoded event gives the same line: the documented encoding is ours
        from gitmodel.audit import Event

        plain = Event(**{k: getattr(e, k) for k in Event.__dataclass_fields__})
        assert plain.line == line
    assert e2.prev == (e1.id,)
    assert e1.id in text.split("```")[-1]  # the id stated under the example
    assert (e1.event, e2.event, e2.stage, e2.replaced) == ("tagged", "promoted", "production", "1.2.0")


def test_documented_fields_are_the_ones_written() -> None:
    from gitmodel.audit import FIELDS, KINDS

    text = _section((DOCS / "audit-format.md").read_text(), "Fields")
    documented = set(re.findall(r"^\| `(\w+)` \| [^|]+ \| (?:yes|no) \|", text, re.M))
    assert documented == FIELDS
    assert set(re.findall(r"^\| `([a-z-]+)` \| `git model", text, re.M)) == set(KINDS)


def _expected(line: str) -> re.Pattern[str]:
    pattern = re.escape(line)
    for placeholder, regex in (("<commit>", "[0-9a-f]{12}"), ("<date>", r"\d{4}-\d\d-\d\d"),
                               ("<time>", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")):
        pattern = pattern.replace(re.escape(placeholder), regex)
    return re.compile(pattern)


def test_walkthrough_runs_as_documented(three: Repo) -> None:
    text = _section((DOCS / "versions.md").read_text(), "Walkthrough")
    (block,) = _fenced(text, "console")
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    assert len(steps) >= 10
    for command, output in steps:
        args = shlex.split(command)
        assert args[:2] == ["git", "model"]
        cp = three.gm(*args[2:])
        got = cp.stdout.splitlines()
        assert len(got) == len(output), f"{command}:\n{cp.stdout}"
        for want, have in zip(output, got):
            assert _expected(want).fullmatch(have), f"{command}\nwant: {want}\nhave: {have}"


def test_tag_message_example_is_what_tag_writes() -> None:
    """The card in versions.md, for the pointer of pointer-format.md's example with an f1 metric."""
    from dataclasses import replace

    from gitmodel.pointer import decode as decode_pointer
    from gitmodel.registry import Change, _card
    from gitmodel.semver import Semver

    section = _section((DOCS / "versions.md").read_text(), "Versions are annotated tags")
    card = section.split("### The tag message", 1)[1]
    (example,) = re.findall(r"^```\n(.*?)^```$", card, re.S | re.M)
    pointer_doc = _section((DOCS / "pointer-format.md").read_text(), "Example")
    (toml,) = _fenced(pointer_doc, "toml")
    pointer = replace(decode_pointer(toml.encode(), "models/sentiment/model.safetensors.model.toml"),
                      name="sentiment", metadata={"metrics": {"f1": 0.87}})
    fields = dict(line.split(": ", 1) for line in example.splitlines() if ": " in line and " " not in line.split(": ")[0])
    written = _card("sentiment", Semver(1, 3, 0), fields["commit"], fields["pointer"], pointer, "v1.2.0",
                    Change("minor", "weights changed: 2 tensor(s) (layer0.weight, layer1.weight)"),
                    "retrained on 2026-10 data")
    assert written == example
