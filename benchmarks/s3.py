"""An ``s3://`` COG written from a cluster: uploaded from the workers, or through scratch.

    .venv/bin/python benchmarks/s3.py [--size 4096] [--results benchmarks/RESULTS-s3.md]

Starts an S3-compatible server (moto, on 127.0.0.1) and a LocalCluster of 2
worker processes (1 thread each), and writes the light job of ``run.py``
(two 3-band uint16 inputs, band 1 / band 2, float32, DEFLATE, 512-px tiles)
as a COG to S3, one run each:

- ``workers``: the default: parts of one multipart upload from the workers,
  with ``riomucho_dask.scratch`` on a 1 MB tmpfs (mounted when this runs as
  root; otherwise an ordinary directory, said so in the results);
- ``scratch``: ``riomucho_dask.upload-parts=False``: the COG written in the
  client's scratch space (the system temporary directory), then uploaded by
  GDAL from the client;
- ``local``: the same COG written to a local file (threads): the reference.

For each: wall time, the bytes the client received from the cluster (every
``client.gather``'s results, pickled), the object's size and parts, rio-cogeo's
``cog_validate``, and whether the object is byte for byte the local COG.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import run as bench  # noqa: E402  (the inputs and the job of run.py)


def mount_tiny(folder: str) -> bool:
    os.makedirs(folder, exist_ok=True)
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder],
                              capture_output=True).returncode == 0
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS-s3.md"))
    args = parser.parse_args()

    import boto3
    import dask
    import rasterio
    from distributed import Client, LocalCluster
    from jobs import light
    from rasterio.session import AWSSession
    from rio_cogeo.cogeo import cog_validate

    import riomucho_dask as rmd

    sys.path.insert(0, os.path.dirname(HERE))
    from tests.conftest import _free_port, _serve, _stop

    inputs = [bench.make_input(0, args.size), bench.make_input(1, args.size)]
    work = tempfile.mkdtemp(prefix="rmd-s3-bench-")
    tiny = os.path.join(work, "tiny-scratch")
    mounted = mount_tiny(tiny)
    port = _free_port()
    server = _serve(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)
    key, secret = "AKIDBENCH", "bench-secret"
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=key,
                      aws_secret_access_key=secret, region_name="us-east-1")
    s3.create_bucket(Bucket="bench")
    session = AWSSession(aws_access_key_id=key, aws_secret_access_key=secret,
                         endpoint_url=f"127.0.0.1:{port}")
    options = {"driver": "COG", "compress": "deflate", "blocksize": 512}
    rows = []
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            received = []
            gather = client.gather

            def spy(futures, *a, **k):
                results = gather(futures, *a, **k)
                received.append(len(pickle.dumps(results)))
                return results

            client.gather = spy
            out = rmd.map_windows(light, inputs, count=1, dtype="float32")
            started = time.perf_counter()
            local = rmd.to_raster(out, os.path.join(work, "local.tif"), like=inputs[0],
                                  scheduler="threads", **options)
            local_wall = time.perf_counter() - started
            with open(local, "rb") as f:
                local_bytes = f.read()
            routes = [("workers", {"riomucho_dask.scratch": tiny}),
                      ("scratch", {"riomucho_dask.upload-parts": False})]
            for name, config in routes:
                received.clear()
                target = f"s3://bench/{name}.tif"
                with rasterio.Env(session, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE"), \
                        dask.config.set(config):
                    started = time.perf_counter()
                    report = rmd.to_raster(out, target, like=inputs[0], scheduler=client,
                                           report=True, **options)
                    wall = time.perf_counter() - started
                got = os.path.join(work, f"{name}.tif")
                s3.download_file("bench", f"{name}.tif", got)
                etag = s3.head_object(Bucket="bench", Key=f"{name}.tif")["ETag"].strip('"')
                with open(got, "rb") as f:
                    data = f.read()
                valid, errors, _ = cog_validate(got)
                rows.append({
                    "route": name, "wall": wall, "received": sum(received), "size": len(data),
                    "parts": etag.rsplit("-", 1)[1] if "-" in etag else "1",
                    "valid": "yes" if valid and not errors else f"no: {errors}",
                    "identical": "yes" if data == local_bytes else "no",
                    "upload": report.total("upload"), "finish": report.client.get("finish", 0),
                    "report": str(report),
                })
            open_uploads = s3.list_multipart_uploads(Bucket="bench").get("Uploads", [])
    finally:
        _stop(server)
        if mounted:
            subprocess.run(["umount", tiny], check=False)
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# An s3:// COG written from a LocalCluster", "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {os.cpu_count()} cores, {platform.platform()}",
        f"- Command: `.venv/bin/python benchmarks/s3.py --size {args.size}`",
        f"- Job: the light job of `run.py` on two {args.size} x {args.size} 3-band uint16 "
        "inputs, written as a float32 COG (DEFLATE, 512-px tiles, overviews) to a moto S3 "
        "server on 127.0.0.1 from a LocalCluster (2 worker processes, 1 thread each); one run.",
        f"- `workers`: scratch space on a 1 MB tmpfs "
        f"({'mounted' if mounted else 'NOT mounted: not root; an ordinary directory'}); "
        "`scratch`: `riomucho_dask.upload-parts=False`, scratch on the system temporary "
        f"directory. The local COG (threads, the bytes' reference) took {local_wall:.2f} s.",
        "- `client received`: the pickled results of every `client.gather` of the write "
        "(tile bytes, sizes, part identifiers). On a LocalCluster the `scratch` route's "
        "workers write their tiles into part files in the client's scratch directory (they "
        "see it), so few bytes are gathered there too: but the client's disk then holds the "
        "output twice (the tiles, then the COG) and the client uploads every byte; on a "
        "remote cluster the tiles come back to the client. The `workers` route needs neither "
        "(its scratch is the 1 MB tmpfs).",
        f"- Multipart uploads left open on the bucket after both: {len(open_uploads)}.",
        "",
        "| route | wall (s) | object (MB) | parts | client received (MB) | % of the object |"
        " workers uploading (s) | client finishing (s) | cog_validate | = local COG |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['route']} | {row['wall']:.2f} | {row['size'] / 2**20:.1f} | {row['parts']} "
            f"| {row['received'] / 2**20:.3f} | {100 * row['received'] / row['size']:.2f}% "
            f"| {row['upload']:.2f} | {row['finish']:.2f} | {row['valid']} | {row['identical']} |")
    lines += ["", "Reports (`report=True`):", ""]
    for row in rows:
        lines += [f"`{row['route']}`:", "", "```", row["report"], "```", ""]
    text = "\n".join(lines)
    with open(args.results, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
