"""Which S3 client git-model uses: obstore against boto3, on a moto server on 127.0.0.1.

Usage: .venv/bin/python -m benchmarks.remote_clients [--size-mib 64] [--multipart-mib 256]

Prints one table: import + client creation (a fresh interpreter, median of 3), one PUT of
SIZE MiB, a multipart upload of MULTIPART MiB (8 MiB parts), and 200 ranged GETs of 256 KiB
out of the SIZE object (what a fetch does), each with wall time and CPU seconds (user+sys).
Both clients need `pip install obstore boto3 moto[server]`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.s3server import MotoServer


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    t, c = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - t, _cpu() - c


def _import_time(code: str, env: dict[str, str]) -> float:
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        runs.append(float(out.stdout.strip()))
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--multipart-mib", type=int, default=256)
    args = parser.parse_args()
    size, big = args.size_mib << 20, args.multipart_mib << 20
    with MotoServer() as server, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **server.env()}
        os.environ.update(server.env())
        server.make_bucket("bench")
        data = os.urandom(size)
        big_path = Path(tmp) / "big"
        with open(big_path, "wb") as f:
            for _ in range(big >> 20):
                f.write(os.urandom(1 << 20))
        ranges = [((i * 7919) % (size // (256 << 10))) * (256 << 10) for i in range(200)]
        rows = []

        import obstore
        from obstore.store import S3Store

        store = S3Store("bench", config={"endpoint": server.url, "region": "us-east-1"},
                        client_options={"allow_http": True})
        imp = _import_time(
            "import time; t=time.perf_counter(); import obstore; from obstore.store import S3Store; "
            f"S3Store('bench', config={{'endpoint': '{server.url}'}}, client_options={{'allow_http': True}}); "
            "print(time.perf_counter()-t)", env)
        put = _timed(lambda: obstore.put(store, "o/one", data, use_multipart=False))
        mp = _timed(lambda: obstore.put(store, "o/big", big_path, use_multipart=True, chunk_size=8 << 20, max_concurrency=4))
        rg = _timed(lambda: obstore.get_ranges(store, "o/one", starts=ranges, lengths=[256 << 10] * len(ranges)))
        rows.append(("obstore " + obstore.__version__, imp, put, mp, rg))

        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
        imp = _import_time(
            "import time; t=time.perf_counter(); import boto3; "
            f"boto3.client('s3', endpoint_url='{server.url}', region_name='us-east-1'); print(time.perf_counter()-t)", env)
        put = _timed(lambda: client.put_object(Bucket="bench", Key="b/one", Body=data))
        cfg = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)
        mp = _timed(lambda: client.upload_file(str(big_path), "bench", "b/big", Config=cfg))

        def boto_ranges() -> None:
            for start in ranges:
                client.get_object(Bucket="bench", Key="b/one", Range=f"bytes={start}-{start + (256 << 10) - 1}")["Body"].read()

        rg = _timed(boto_ranges)
        rows.append(("boto3 " + boto3.__version__, imp, put, mp, rg))

    print(f"| client | import + client (s) | PUT {args.size_mib} MiB wall / CPU (s) | multipart {args.multipart_mib} MiB "
          f"wall / CPU (s) | 200 ranged GETs of 256 KiB wall / CPU (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name, imp, put, mp, rg in rows:
        print(f"| {name} | {imp:.2f} | {put[0]:.2f} / {put[1]:.2f} | {mp[0]:.2f} / {mp[1]:.2f} | {rg[0]:.2f} / {rg[1]:.2f} |")


if __name__ == "__main__":
    main()
