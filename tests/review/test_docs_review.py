"""docs/review.md shows real output: each ```console block's command, run again in the scenario repository, prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.review.docs_scenario import ROOT, build, examples, normalize, run_example

DOC = ROOT / "docs" / "review.md"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("review-docs")
    return build(base / "repo", base / "home")


def test_every_output_of_the_doc_is_shown(scenario) -> None:  # type: ignore[no-untyped-def]
    shown = examples(DOC.read_text(encoding="utf-8"))
    commands = [c.split()[:3] for c, _ in shown]
    for wanted in (["git", "model", "diff"], ["git", "model", "compare"], ["git", "diff", "-U1"]):
        assert wanted in commands, wanted
    flags = " ".join(c for c, _ in shown)
    for flag in ("--stat", "--markdown", "--json", "--numeric"):
        assert flag in flags, flag
    for command, output in shown:
        got = run_example(scenario, command)
        assert normalize(got) == normalize(output), f"docs/review.md: the output of '{command}' changed:\n{got}"


def test_fences_are_closed() -> None:
    fences = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0


def test_masking_keeps_what_matters() -> None:
    assert normalize('code.commit: "049a80e13bcd238af4271a5aaa7772909f6e1e69" at 2026-12-02T00:23:13+00:00') == \
        'code.commit: "<id>" at <time>'
    assert normalize("2 of 7 tensors changed, 64.8 KiB; lr 0.0003; params 105216") == \
        "2 of 7 tensors changed, 64.8 KiB; lr 0.0003; params 105216"
