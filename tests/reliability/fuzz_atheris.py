"""Coverage-guided fuzzing of one parser with atheris (libFuzzer), run by hand; not part of any test run.

    .venv/bin/python -m pip install atheris          # a wheel installs on Linux x86-64, CPython 3.11
    PYTHONPATH=tests .venv/bin/python tests/reliability/fuzz_atheris.py TARGET [libFuzzer flags]
    e.g. ... fuzz_atheris.py pointer -runs=200000 -max_len=4096

TARGET is one of: pointer, manifest, audit, config, index, container, codec, safetensors, gguf,
zip. The property is the hypothesis harnesses' (tests/reliability/fuzz_support.py): the parser
returns or raises GitModelError; anything else is a crash libFuzzer reports with the input saved
as crash-<sha1>. For checkpoints (safetensors, gguf, zip) nothing may escape at all, and the
layout must tile the file. libFuzzer's -timeout and -rss_limit_mb bound hangs and memory.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace


def _targets() -> dict[str, Callable[[bytes], object]]:
    from gitmodel import audit, codecs, pointer
    from gitmodel.chunking import detect_layout, plan_chunks
    from gitmodel.manifest import Manifest
    from gitmodel.store import container
    from gitmodel.store.pack import decode_index

    config_dir = Path(tempfile.mkdtemp(prefix="atheris-config-"))

    def config(data: bytes) -> None:
        from gitmodel.config import load_config
        from gitmodel.remote.config import load_remotes
        from gitmodel.schema import load_schema

        (config_dir / ".gitmodel.toml").write_bytes(data)
        git: object = SimpleNamespace(workdir=config_dir)
        load_config(git)  # type: ignore[arg-type]
        load_remotes(git)  # type: ignore[arg-type]
        load_schema(git)  # type: ignore[arg-type]

    def layout(name: str) -> Callable[[bytes], object]:
        def parse(data: bytes) -> None:
            result = detect_layout(memoryview(data), name)
            pos = 0
            for seg in result.segments:
                assert seg.offset == pos and seg.length >= 0
                pos += seg.length
            assert pos == len(data)
            list(plan_chunks(result, memoryview(data)))
        return parse

    def codec(data: bytes) -> None:
        if len(data) < 5:
            return
        raw_len = int.from_bytes(data[1:5], "little")
        codecs.decode(data[0] % 5, data[5:], raw_len, "0" * 32, lambda cid: b"\0" * 64)

    return {
        "pointer": lambda d: pointer.decode(d, "m.model.toml"),
        "manifest": lambda d: Manifest.decode(d, "m"),
        "audit": lambda d: audit.decode(d.decode("latin-1")),
        "config": config,
        "index": lambda d: decode_index(d, "0" * 64, "x.idx"),
        "container": lambda d: container.parse_header(d, "x", container.CONTAINER_V2),
        "codec": codec,
        "safetensors": layout("m.safetensors"),
        "gguf": layout("m.gguf"),
        "zip": layout("m.pt"),
    }


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        from gitmodel.errors import GitModelError

        targets = _targets()
    if len(sys.argv) < 2 or sys.argv[1] not in targets:
        sys.exit(f"usage: fuzz_atheris.py {{{','.join(targets)}}} [libFuzzer flags]")
    name = sys.argv.pop(1)
    target = targets[name]
    strict = name in ("safetensors", "gguf", "zip")

    def one(data: bytes) -> None:
        try:
            target(data)
        except GitModelError:
            if strict:  # a checkpoint's damage is a warning, never an error
                raise

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
