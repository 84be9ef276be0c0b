"""``--executor dask``: CPU-bound parameter sets on 2 workers vs serial, the overhead per
cached stage call, and a remote cache (a moto S3 server on 127.0.0.1) cold and warm.

Needs ``pip install -e '.[test]'`` (distributed, s3fs, moto). Whole-process wall times.

Usage::

    python benchmarks/bench_dask.py                 # 8 sets of 1.5 s, then of 3 s each
    python benchmarks/bench_dask.py --work 3.0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CPU = '''
import os, time
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    seed: int = 0

def get_params():
    return [Params(name=f"s{i}", seed=i) for i in range(int(os.environ.get("CF_SETS", "8")))]

@cf.stage(None, ["value"], [JsonCacher])
def burn(record):
    end = time.process_time() + float(os.environ.get("CF_WORK", "1.5"))
    total = record.params.seed
    while time.process_time() < end:
        total = (total * 31 + 7) % 1000003
    return total

def run(param_sets, manager):
    for p in param_sets:
        burn(cf.Record(manager, p))
'''


def project(folder: str, config: dict | None = None) -> str:
    os.makedirs(os.path.join(folder, "experiments"), exist_ok=True)
    with open(os.path.join(folder, "experiments", "cpu.py"), "w") as handle:
        handle.write(CPU)
    with open(os.path.join(folder, "curifactory_config.json"), "w") as handle:
        json.dump(config or {}, handle)
    return folder


def timed(folder: str, *flags: str, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curifactory", *flags, "--no-report"], cwd=folder, check=True,
                   capture_output=True, env=dict(os.environ, **(env or {})))
    return time.perf_counter() - start


def cpu_bound(base: str, work: float) -> None:
    env = {"CF_WORK": str(work)}
    serial = timed(project(os.path.join(base, "serial")), "cpu", env=env)
    dask = timed(project(os.path.join(base, "dask")), "cpu", "--executor", "dask", "--parallel", "2", env=env)
    print(f"8 CPU-bound sets of {work:g} s: serial {serial:.2f} s, --executor dask (2 local workers, cluster start "
          f"included) {dask:.2f} s: {serial / dask:.2f}x faster (target 1.7x)")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    folder = project(os.path.join(base, "scheduler"))
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                 "--port", str(port), "--dashboard-address", ":0"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)]
    try:
        started += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                      "--no-dashboard"], cwd=folder, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL) for _ in range(2)]
        import distributed

        with distributed.Client(address, timeout="30s") as probe:
            probe.wait_for_workers(2, timeout=60)
        running = timed(folder, "cpu", "--executor", "dask", "--scheduler", address, env=env)
        print(f"  the same on a running scheduler with 2 workers: {running:.2f} s: {serial / running:.2f}x faster")
    finally:
        for process in started:
            process.kill()
            process.wait()


def cached_overhead(base: str) -> None:
    folder = os.path.join(base, "workload")
    shutil.copytree(os.path.join(HERE, "workload"), folder)
    env = {"CF_BENCH_N": "200"}
    timed(folder, "bench", "-p", "bench", env=env)
    plain = min(timed(folder, "bench", "-p", "bench", env=env) for _ in range(3))
    dask = min(timed(folder, "bench", "-p", "bench", "--executor", "dask", env=env) for _ in range(3))
    print(f"warm, 600 cached stage calls: {plain:.2f} s in-process, {dask:.2f} s with --executor dask (no task is "
          f"submitted): {(dask - plain) / 600 * 1000:.2f} ms per cached call")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def remote(base: str) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "CF_WORK": "0.05", "CF_SETS": "50"}
    try:
        time.sleep(2)
        import s3fs

        s3fs.S3FileSystem(key="testing", secret="testing",
                          client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]}).mkdir("bench")
        config = {"remote_cache": "s3://bench/cache"}
        cold = timed(project(os.path.join(base, "one"), config), "cpu", env=env)
        from_remote = timed(project(os.path.join(base, "two"), config), "cpu", env=env)
        warm = timed(os.path.join(base, "two"), "cpu", env=env)
        local = timed(project(os.path.join(base, "three")), "cpu", env=env)
        print(f"remote cache, 50 sets: cold {cold:.2f} s (compute and upload; {local:.2f} s without a remote), an "
              f"empty project filled from it {from_remote:.2f} s (download), then warm {warm:.2f} s")
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="1.5,3", help="CPU seconds per parameter set (comma-separated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        for number, work in enumerate(args.work.split(",")):
            cpu_bound(os.path.join(base, f"cpu{number}"), float(work))
        cached_overhead(base)
        remote(base)


if __name__ == "__main__":
    main()
