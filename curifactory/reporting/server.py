"""Serving the reports folder over HTTP (``experiment reports``).

A plain :mod:`http.server` bound to ``127.0.0.1`` by default, whose handler serves
only files inside the reports folder: a path that resolves outside it (``..``,
encoded ``%2e%2e``, a symlink pointing elsewhere) is refused with 403. It also
answers ``/diff?a=REF&b=REF`` with the diff page of two runs (the run index's
"diff" button), made from the store folder it was given.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import urllib.parse
from typing import Any, Callable

logger = logging.getLogger(__name__)


class ReportsHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the files of one folder (``directory=``) and nothing outside it, and run diffs."""

    store_dir: str | None = None
    default_request_version = "HTTP/1.0"  # a malformed request line still gets a status line

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.path.rstrip("/") in ("/diff", "/diff.html"):
            self._diff(urllib.parse.parse_qs(parts.query))
            return
        super().do_GET()

    def _diff(self, query: dict[str, list[str]]) -> None:
        import html

        from curifactory.errors import CurifactoryError
        from curifactory.reporting.diffpage import diff_page
        from curifactory.rundiff import diff_runs

        a, b = (query.get("a") or [""])[0], (query.get("b") or [""])[0]
        try:
            if not (a and b):
                raise CurifactoryError("Name two runs: /diff?a=REF&b=REF.")
            if self.store_dir is None:
                raise CurifactoryError("This server was started without a store folder, so it cannot diff runs.")
            status, body = 200, diff_page(diff_runs(a, b, self.store_dir))
        except CurifactoryError as exc:
            status, body = 404, f"<!DOCTYPE html><title>no diff</title><p>{html.escape(str(exc))}</p>"
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _inside(self) -> bool:
        root = os.path.realpath(self.directory)
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if ".." in raw.replace("\\", "/").split("/"):
            return False
        target = os.path.realpath(self.translate_path(self.path))
        return target == root or target.startswith(root + os.sep)

    def send_head(self) -> Any:
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path, errors="surrogateescape")
        if "\x00" in raw or any("\ud800" <= c <= "\udfff" for c in raw):
            self.send_error(400, "The path holds a NUL byte or is not UTF-8")
            return None
        try:
            inside = self._inside()
        except (ValueError, UnicodeError, OSError):
            self.send_error(400, "Not a path of this server")
            return None
        if not inside:
            self.send_error(403, "Outside the reports folder")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        # folders without an index.html are not browsable
        self.send_error(404, "No report here")
        return None

    def log_message(self, fmt: str, *args: Any) -> None:
        logger.info("%s - %s", self.address_string(), fmt % args)


def make_server(reports_path: str, host: str = "127.0.0.1", port: int = 8080,
                store_dir: str | None = None) -> http.server.ThreadingHTTPServer:
    """A (not yet serving) HTTP server for ``reports_path``; ``port=0`` picks a free port;
    ``store_dir`` (the ``manager_cache_path``) lets it serve ``/diff`` pages.

    Call ``serve_forever()`` on it (in a thread for tests) and ``shutdown()`` /
    ``server_close()`` when done.
    """
    folder = os.path.abspath(reports_path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The reports folder {folder} does not exist yet. Run an experiment first, or "
            f"check 'reports_path' in curifactory_config.json."
        )
    handler_class = type("ProjectReportsHandler", (ReportsHandler,), {"store_dir": store_dir})
    handler = functools.partial(handler_class, directory=folder)
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_reports(
    reports_path: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    update: bool = False,
    store_path: str | None = None,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve the reports folder until interrupted (Ctrl-C).

    Args:
        reports_path: the folder to serve (the project's ``reports_path``).
        host: the address to bind; the default keeps the reports on this machine.
        port: the TCP port.
        update: rebuild ``index.html`` from the store first.
        store_path: ``store.json`` or ``manager_cache_path``, needed by ``update``.
        on_ready: called with the bound host and port once the server listens.
    """
    from curifactory.reporting.index import update_index

    if update or not os.path.isfile(os.path.join(reports_path, "index.html")):
        update_index(reports_path, store_path)
    store_dir = os.path.dirname(store_path) if store_path and not os.path.isdir(store_path) else store_path
    server = make_server(reports_path, host, port, store_dir)
    bound_host, bound_port = server.server_address[:2]
    logger.info("Serving %s at http://%s:%s/ (Ctrl-C to stop)", os.path.abspath(reports_path), bound_host, bound_port)
    if on_ready is not None:
        on_ready(str(bound_host), int(bound_port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
