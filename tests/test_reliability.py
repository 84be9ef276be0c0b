"""Never a wrong value, never a leftover: checkpoints resumed after kill -9, parameter values
hashed by their whole content, JSON round trips, hostile requests to the report server, and
what a killed run leaves behind. Real projects, real processes."""

from __future__ import annotations

import dataclasses
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest
from conftest import CliProject

import curifactory as cf
from curifactory import fileio, hashing
from curifactory.caching import JsonCacher
from curifactory.errors import CacheWarning, CheckpointError, HashingError

LONG = """
import os, time
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    steps: int = 10

def get_params():
    return [Params(name="a", steps=int(os.environ.get("CF_STEPS", "10")))]

@cf.stage(None, ["result"], [JsonCacher])
def train(record):
    state = record.last_checkpoint({"step": 0, "total": 0})
    with open(os.environ["CF_TEST_SIDE"], "a") as f:
        f.write(f"start:{state['step']}\\n")
    for step in range(state["step"], record.params.steps):
        state = {"step": step + 1, "total": state["total"] + step}
        record.checkpoint(state)
        with open("progress.txt", "w") as f:
            f.write(str(step + 1))
        time.sleep(float(os.environ.get("CF_PAUSE", "0.2")))
    return state

def run(param_sets, manager):
    for p in param_sets:
        train(cf.Record(manager, p))
"""


def kill_at(cli: CliProject, step: int, **env: str) -> None:
    """Start the experiment and SIGKILL it once the stage has finished ``step`` steps."""
    progress = cli.root / "progress.txt"
    progress.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "curifactory", "long"], cwd=cli.root,
                               env=dict(cli.env(), **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (progress.exists() and progress.read_text() == str(step)):
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert progress.read_text() == str(step)


def test_a_stage_killed_at_step_7_of_10_resumes_at_7(tmp_path):
    cli = CliProject(tmp_path, {"experiments/long.py": LONG})
    kill_at(cli, 7)
    assert cli.executed() == ["start:0"]
    checkpoints = cli.root / "data" / "cache" / ".checkpoints"
    assert len(list(checkpoints.iterdir())) == 1
    result = cli.run("long")
    assert result.returncode == 0, result.stderr
    assert cli.executed() == ["start:7"]
    [entry] = (cli.root / "data" / "cache").glob("*_train_result.json")
    assert '"total": 45' in entry.read_text()  # 0 + 1 + ... + 9: nothing lost, nothing counted twice
    assert list(checkpoints.iterdir()) == []  # removed once the output was committed
    assert cli.run("long").returncode == 0 and cli.executed() == []


def test_a_checkpoint_is_never_resumed_by_other_parameters_or_changed_code(tmp_path):
    cli = CliProject(tmp_path, {"experiments/long.py": LONG})
    kill_at(cli, 4)
    cli.executed()
    result = subprocess.run(
        [sys.executable, "-m", "curifactory", "long"], cwd=cli.root, env=dict(cli.env(), CF_STEPS="6"),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert cli.executed() == ["start:0"]  # another parameter set: its own, empty checkpoint
    source = cli.root / "experiments" / "long.py"
    source.write_text(source.read_text().replace("state[\"total\"] + step", "state[\"total\"] + 2 * step"))
    result = cli.run("long")
    assert result.returncode == 0, result.stderr
    assert cli.executed() == ["start:0"]  # changed code: the old checkpoint (step 4) is not resumed
    [entry] = [p for p in (cli.root / "data" / "cache").glob("*_train_result.json")
               if '"step": 10' in p.read_text()]
    assert '"total": 90' in entry.read_text()


def test_checkpoint_outside_a_stage_is_a_clear_error(tmp_path):
    manager = cf.ArtifactManager("x", cache_path=str(tmp_path / "cache"), manager_cache_path=str(tmp_path))
    record = cf.Record(manager, None)
    with pytest.raises(CheckpointError, match="only inside a stage"):
        record.checkpoint({"step": 1})


@dataclasses.dataclass
class WithCallable(cf.ExperimentParameters):
    fn: object = None
    n: object = None


def make_adder(k):
    return lambda x: x + k


def test_callables_are_hashed_by_their_code_and_closure():
    assert hashing.compute_hash(WithCallable(fn=lambda x: x + 1)) != hashing.compute_hash(
        WithCallable(fn=lambda x: x + 2))
    assert hashing.compute_hash(WithCallable(fn=make_adder(1))) != hashing.compute_hash(
        WithCallable(fn=make_adder(2)))
    assert hashing.compute_hash(WithCallable(fn=make_adder(3))) == hashing.compute_hash(
        WithCallable(fn=make_adder(3)))


def test_a_value_that_cannot_become_text_names_the_field():
    with pytest.raises(HashingError, match=r"field 'n' of the parameter set 'huge' \(int\)"):
        hashing.compute_hash(WithCallable(name="huge", n=10**5000))


def test_an_address_bearing_repr_is_a_warning_naming_the_field(caplog):
    class Opaque:
        pass

    hashing.compute_hash(WithCallable(name="opaque", n=Opaque()))
    assert "field 'n' of the parameter set 'opaque'" in caplog.text and "memory address" in caplog.text


def test_an_unhashable_parameter_is_not_reported_as_a_failed_import(tmp_path):
    cli = CliProject(tmp_path, {"experiments/huge.py": """
        import curifactory as cf
        from dataclasses import dataclass

        @dataclass
        class Params(cf.ExperimentParameters):
            n: int = 0

        def get_params():
            return [Params(name="huge", n=10**5000)]

        def run(param_sets, manager):
            for p in param_sets:
                cf.Record(manager, p).get_hash()
    """})
    result = cli.run("huge")
    assert result.returncode != 0
    assert "field 'n' of the parameter set 'huge'" in result.stderr
    assert "loading experiment" not in result.stderr.lower() and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", [(1, 2), {1: "a"}, {"s": {1, 2}}, {"deep": [1, (2, 3)]}])
def test_json_cacher_warns_when_a_value_does_not_survive_the_round_trip(tmp_path, value):
    cacher = JsonCacher(path_override=str(tmp_path / "v.json"))
    with pytest.warns(CacheWarning, match="does not survive the JSON round trip"):
        cacher.save(value)


@pytest.mark.parametrize("value", [{"a": [1, 2.5, float("nan")], "b": None, "c": True}, [1, "x"], 3.0])
def test_json_cacher_is_quiet_for_json_values(tmp_path, value):
    cacher = JsonCacher(path_override=str(tmp_path / "v.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        cacher.save(value)


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def served(tmp_path):
    import threading

    from curifactory.reporting import server

    reports = tmp_path / "reports"
    (reports / "run_1").mkdir(parents=True)
    (reports / "run_1" / "index.html").write_text("<p>one</p>")
    httpd = server.make_server(str(reports), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("path", ["/run_1/%00", "/%00/../x", "/run_1/index.html%00.txt", "/%ed%a0%80",
                                  "/run_1/%c0%ae%c0%ae/x", "/" + "a" * 5000])
def test_hostile_paths_get_an_http_status(served, path):
    answer = raw_request(served, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.") and answer.split()[1] in (b"400", b"403", b"404", b"414")


@pytest.mark.parametrize("request_bytes", [b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"BREW / HTTP/1.1\r\n\r\n",
                                           b"GET / HTTP/9.9\r\n\r\n"])
def test_malformed_requests_get_an_http_status(served, request_bytes):
    answer = raw_request(served, request_bytes)
    assert answer.startswith(b"HTTP/") and answer.split()[1][:1] in (b"4", b"5")


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_an_out_of_range_port_is_a_usage_error(tmp_path, port):
    cli = CliProject(tmp_path, {})
    result = cli.run("reports", "--port", port)
    assert result.returncode == 2 and "0 to 65535" in result.stderr


def test_a_killed_runs_temporary_report_folder_is_swept(tmp_path):
    cli = CliProject(tmp_path, {"experiments/long.py": LONG})
    assert subprocess.run([sys.executable, "-m", "curifactory", "long"], cwd=cli.root,
                          env=dict(cli.env(), CF_STEPS="1"), capture_output=True, timeout=120).returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    reports = cli.root / "reports"
    leftover = reports / f"{fileio.TEMP_MARK}{dead.pid}-{fileio._HOST}-0abc-long_9"
    (leftover / "sub").mkdir(parents=True)
    live = reports / f"{fileio.TEMP_MARK}{os.getpid()}-{fileio._HOST}-1abc-long_10"
    live.mkdir()
    assert subprocess.run([sys.executable, "-m", "curifactory", "long"], cwd=cli.root,
                          env=dict(cli.env(), CF_STEPS="1"), capture_output=True, timeout=120).returncode == 0
    assert not leftover.exists()
    assert live.exists()  # a running process's folder is left alone


def test_http_client_sees_a_400_for_a_nul_byte(served):
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=5)
    connection.request("GET", "/run_1/%00")
    assert connection.getresponse().status == 400


SLOW = """
import os, time
import curifactory as cf
from dataclasses import dataclass
from curifactory.caching import JsonCacher

@dataclass
class Params(cf.ExperimentParameters):
    n: int = 0

def get_params():
    return [Params(name=f"s{n}", n=n) for n in range(4)]

@cf.stage(None, ["x"], [JsonCacher])
def slow(record):
    with open(f"pid_{os.getpid()}", "w") as f:
        f.write("")
    time.sleep(60)
    return record.params.n

def run(param_sets, manager):
    for p in param_sets:
        slow(cf.Record(manager, p))
"""


def test_parallel_workers_stop_when_their_parent_is_killed(tmp_path):
    cli = CliProject(tmp_path, {"experiments/slow.py": SLOW})
    parent = subprocess.Popen([sys.executable, "-m", "curifactory", "slow", "--parallel", "2"], cwd=cli.root,
                              env=cli.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(cli.root.glob("pid_*"))) < 2:
        time.sleep(0.05)
    workers = [int(p.name.split("_")[1]) for p in cli.root.glob("pid_*")]
    assert len(workers) == 2 and parent.pid not in workers
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.time() + 5
    while time.time() < deadline and any(fileio.pid_alive(pid) for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if fileio.pid_alive(pid)]
    for pid in alive:  # do not leave them computing if the check fails
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "workers still ran 5 s after their parent was killed"


def test_names_near_the_file_name_limit_work_and_longer_ones_fail_before_any_stage(tmp_path):
    def project(length: int) -> CliProject:
        name = "o" * length
        return CliProject(tmp_path / str(length), {"experiments/e.py": f"""
            import os
            import curifactory as cf
            from curifactory.caching import JsonCacher

            def get_params():
                return [cf.ExperimentParameters(name="a")]

            @cf.stage(None, ["first"], [JsonCacher])
            def first(record):
                with open(os.environ["CF_TEST_SIDE"], "a") as f:
                    f.write("first\\n")
                return 1

            @cf.stage(["first"], ["{name}"], [JsonCacher])
            def second(record, first):
                return 2

            def run(param_sets, manager):
                for p in param_sets:
                    second(first(cf.Record(manager, p)))
        """})

    # e_<32-hex hash>_second_<name>_metadata.json: 256 bytes at this length
    fits = project(255 - len("e_") - 32 - len("_second_") - len("_metadata.json"))
    result = fits.run("e")
    assert result.returncode == 0, result.stderr
    assert any(len(p.name) == 255 for p in (fits.root / "data" / "cache").iterdir())
    too_long = project(255 - len("e_") - 32 - len("_second_") - len("_metadata.json") + 1)
    result = too_long.run("e")
    assert result.returncode != 0
    assert "255-byte limit" in result.stderr and "Traceback" not in result.stderr
    assert too_long.executed() == []  # failed before any stage ran
