"""Serving the reports folder over HTTP (``experiment reports``).

A plain :mod:`http.server` bound to ``127.0.0.1`` by default, whose handler serves
only files inside the reports folder: a path that resolves outside it (``..``,
encoded ``%2e%2e``, a symlink pointing elsewhere) is refused with 403.
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
    """Serves the files of one folder (``directory=``) and nothing outside it."""

    def _inside(self) -> bool:
        root = os.path.realpath(self.directory)
        raw = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if ".." in raw.replace("\\", "/").split("/"):
            return False
        target = os.path.realpath(self.translate_path(self.path))
        return target == root or target.startswith(root + os.sep)

    def send_head(self) -> Any:
        if not self._inside():
            self.send_error(403, "Outside the reports folder")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        # folders without an index.html are not browsable
        self.send_error(404, "No report here")
        return None

    def log_message(self, fmt: str, *args: Any) -> None:
        logger.info("%s - %s", self.address_string(), fmt % args)


def make_server(reports_path: str, host: str = "127.0.0.1", port: int = 8080) -> http.server.ThreadingHTTPServer:
    """A (not yet serving) HTTP server for ``reports_path``; ``port=0`` picks a free port.

    Call ``serve_forever()`` on it (in a thread for tests) and ``shutdown()`` /
    ``server_close()`` when done.
    """
    folder = os.path.abspath(reports_path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The reports folder {folder} does not exist yet. Run an experiment first, or "
            f"check 'reports_path' in curifactory_config.json."
        )
    handler = functools.partial(ReportsHandler, directory=folder)
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
    server = make_server(reports_path, host, port)
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
