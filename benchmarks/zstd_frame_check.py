"""What refusing bytes after a zstd frame costs checkout: decoding one 4 MiB chunk, with and without.

zstandard's `decompress(..., allow_extra_data=False)` compares where the frame ended with the
payload's length; this measures that against the plain call, interleaved, in CPU seconds
(user + sys of this process) per call, minimum and median over --repeat rounds.

    python benchmarks/zstd_frame_check.py --repeat 15
"""

from __future__ import annotations

import argparse
import resource
import statistics


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    import numpy as np
    import zstandard

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40, help="decodes per round")
    args = parser.parse_args()
    # a chunk zstd keeps (it halves): small integers, as quantized tables and token ids are
    raw = np.random.default_rng(0).integers(0, 16, 4 << 20, dtype=np.uint8).tobytes()
    frame = zstandard.ZstdCompressor(level=1).compress(raw)
    d = zstandard.ZstdDecompressor()
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for allow in (True, False):
            start = _cpu()
            for _ in range(args.calls):
                d.decompress(frame, max_output_size=len(raw), allow_extra_data=allow)
            times[allow].append((_cpu() - start) / args.calls)
    print(f"4 MiB chunk, zstd frame of {len(frame)} bytes, {args.repeat} x {args.calls} decodes each")
    print("| decode | min ms | median ms |")
    print("| --- | --- | --- |")
    for allow, label in ((True, "bytes after the frame ignored"), (False, "bytes after the frame refused")):
        print(f"| {label} | {min(times[allow]) * 1e3:.3f} | {statistics.median(times[allow]) * 1e3:.3f} |")
    base, check = min(times[True]), min(times[False])
    print(f"cost of the check: {(check - base) / base * 100:+.2f}% of a decode (minimum against minimum)")


if __name__ == "__main__":
    main()
