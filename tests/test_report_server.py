"""The report server: serves the reports folder, and nothing outside it."""

from __future__ import annotations

import http.client
import inspect
import json
import os
import threading
import urllib.request

import pytest

from curifactory.reporting import server


@pytest.fixture
def served(tmp_path):
    """A reports folder with one report, served on a free port of 127.0.0.1."""
    reports = tmp_path / "reports"
    (reports / "run_1").mkdir(parents=True)
    (reports / "run_1" / "index.html").write_text("<p>report one</p>")
    (reports / "index.html").write_text("<p>the index</p>")
    (reports / "empty").mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    os.symlink(tmp_path / "secret.txt", reports / "leak.txt")
    httpd = server.make_server(str(reports), port=0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def get(httpd, path: str) -> tuple[int, str]:
    """Send ``path`` exactly as given (no client-side normalisation)."""
    host, port = httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_serves_reports(served):
    host, port = served.server_address[:2]
    assert host == "127.0.0.1"
    with urllib.request.urlopen(f"http://{host}:{port}/run_1/index.html", timeout=5) as response:
        assert response.status == 200 and b"report one" in response.read()
    assert get(served, "/") == (200, "<p>the index</p>")
    assert get(served, "/run_1/")[1] == "<p>report one</p>"


@pytest.mark.parametrize("path", [
    "/../secret.txt",
    "/run_1/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/run_1/%2E%2E/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/leak.txt",
])
def test_refuses_paths_outside_the_folder(served, path):
    status, body = get(served, path)
    assert status in (403, 404)
    assert "top secret" not in body


def test_no_directory_listings(served):
    status, body = get(served, "/empty/")
    assert status == 404 and "Directory listing" not in body


def test_defaults_bind_localhost_port_8080():
    params = inspect.signature(server.serve_reports).parameters
    assert params["host"].default == "127.0.0.1" and params["port"].default == 8080
    assert inspect.signature(server.make_server).parameters["host"].default == "127.0.0.1"


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="reports_path"):
        server.make_server(str(tmp_path / "nope"), port=0)


def test_serve_reports_updates_the_index_first(tmp_path, monkeypatch, caplog):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("stale")
    store = tmp_path / "store.json"
    store.write_text(json.dumps([{"reference": "e_1_2024-01-01-T000000", "experiment_name": "e",
                                  "run_number": 1, "timestamp": "2024-01-01-T000000", "status": "complete"}]))
    started = {}

    class FakeServer:
        server_address = ("127.0.0.1", 8080)

        def serve_forever(self):
            started["index"] = (reports / "index.html").read_text()
            raise KeyboardInterrupt

        def server_close(self):
            started["closed"] = True

    def fake_make_server(path, host, port, store_dir=None):
        started["args"] = (path, host, port)
        return FakeServer()

    monkeypatch.setattr(server, "make_server", fake_make_server)
    with caplog.at_level("INFO", logger="curifactory.reporting.server"):
        server.serve_reports(str(reports), update=True, store_path=str(store))
    assert started["args"] == (str(reports), "127.0.0.1", 8080)
    assert "e_1_2024-01-01-T000000" in started["index"] and started["closed"]
    assert "http://127.0.0.1:8080/" in caplog.text
