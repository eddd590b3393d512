"""The examples in docs/codecs.md are test inputs: each payload is what we write, and decodes to its bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from codec_values import cid

from gitmodel import codecs
from gitmodel.codecs.planes import PlaneLayout

DOC = Path(__file__).resolve().parents[2] / "docs" / "codecs.md"


def examples() -> list[dict[str, bytes | int]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```codec-example\n(.*?)^```$", text, re.S | re.M)
    out = []
    for block in blocks:
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] != " ":
                key, _, line = line.partition(" ")
            fields[key] = fields.get(key, "") + " " + line
        example: dict[str, bytes | int] = {"codec": int(fields.pop("codec"))}
        example.update({k: bytes.fromhex(v) for k, v in fields.items()})
        out.append(example)
    return out


def test_the_doc_has_its_examples_and_closed_fences() -> None:
    assert [e["codec"] for e in examples()] == [codecs.CODEC_PLANES, codecs.CODEC_XOR_DELTA, codecs.CODEC_XOR_DELTA]
    assert DOC.read_text(encoding="utf-8").count("```") % 2 == 0


@pytest.mark.parametrize("example", examples(), ids=lambda e: f"codec {e['codec']}")
def test_each_example_is_what_we_write_and_decodes_to_its_bytes(example: dict[str, bytes | int]) -> None:
    codec, raw, payload = example["codec"], example["raw"], example["payload"]
    assert isinstance(codec, int) and isinstance(raw, bytes) and isinstance(payload, bytes)
    base = example.get("base")
    if codec == codecs.CODEC_PLANES:  # the layout a writer chose is in the payload's first bytes
        written = codecs.encode_with(codec, raw, PlaneLayout(payload[0], payload[1]))
    else:
        assert isinstance(base, bytes)
        written = codecs.encode_with(codec, raw, PlaneLayout(payload[25], payload[26]), codecs.Base(cid(base), base))
        assert codecs.base_of(codec, payload) == cid(base)
    assert bytes(written.payload) == payload
    bases = {} if base is None else {cid(base): base}
    assert bytes(codecs.decode(codec, payload, len(raw), cid(raw), load_base=bases.__getitem__)) == raw
