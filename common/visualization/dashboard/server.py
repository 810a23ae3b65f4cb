"""The dashboard's HTTP server (standard library ``http.server``): the page, its static assets
and a JSON API over ``Dashboard``; a background thread takes a new store snapshot every
``refresh_s`` seconds so open pages follow runs while they train.

Routes (GET only): ``/`` the page; ``/static/app.js``, ``/static/app.css``,
``/static/plotly.min.js``; ``/api/meta``, ``/api/state``, ``/api/runs``, ``/api/curves``,
``/api/compare``, ``/api/run``, ``/api/sql``. Nothing else is served.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from common.visualization.dashboard.queries import QUERY_TIMEOUT_S, Dashboard, DashboardError

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "plotly.min.js": "text/javascript; charset=utf-8",
}


def plotly_js() -> str:
    """plotly.js as shipped inside the ``plotly`` package (no network)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def static_text(name: str) -> str:
    """A static asset of the page by name (``index.html``, ``app.js``, ``app.css``, plotly)."""
    if name == "plotly.min.js":
        return plotly_js()
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(value: str | None, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DashboardError(f"{name} must be a whole number, got {value!r}") from None


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would drown the URL line; errors go back to the page

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self.server.host_allowed(self.headers.get("Host", "")):
            self._send(HTTPStatus.FORBIDDEN, b"unexpected Host header", "text/plain")
            return
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        path = url.path
        if path == "/":
            page = self.server.page()
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path.startswith("/static/") and path[len("/static/") :] in STATIC_TYPES:
            name = path[len("/static/") :]
            body = self.server.asset(name)
            self._send(HTTPStatus.OK, body, STATIC_TYPES[name], cache=True)
        elif path.startswith("/api/") and path[5:] in self.server.routes:
            self._api(self.server.routes[path[5:]], params)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def _api(self, route: Callable[[dict[str, list[str]]], Any], params: dict) -> None:
        try:
            status, payload = HTTPStatus.OK, route(params)
        except DashboardError as exc:
            status, payload = HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        except Exception as exc:  # the page shows it; the server keeps serving
            status, payload = HTTPStatus.INTERNAL_SERVER_ERROR, {
                "error": f"unexpected {type(exc).__name__}: {exc}"
            }
        body = json.dumps(payload, allow_nan=False, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, *, cache: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away


class DashboardServer(ThreadingHTTPServer):
    """The dashboard on ``host:port`` (port 0: any free one) over the store in ``storage_dir``;
    a user's query is stopped after ``query_timeout`` seconds. ``server_close`` stops running
    queries and returns within about a second, whatever the requests are doing.

    Raises:
        StoreNotFoundError: no store there.
        OSError: the address cannot be bound.
    """

    daemon_threads = True

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        refresh_s: float = 1.0,
        query_timeout: float = QUERY_TIMEOUT_S,
    ) -> None:
        self.data = Dashboard(storage_dir, query_timeout=query_timeout)
        self.refresh_s = refresh_s
        self._assets: dict[str, bytes] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._follow, name="dashboard-refresh", daemon=True)
        super().__init__((host, port), _Handler)  # on failure it calls server_close
        self.routes: dict[str, Callable[[dict[str, list[str]]], Any]] = {
            "meta": lambda p: self.data.meta(),
            "state": lambda p: self.data.state(),
            "runs": self._runs,
            "curves": lambda p: self.data.curves(p.get("name", [])),
            "compare": lambda p: self.data.compare(p.get("name", []), _one(p, "split")),
            "run": lambda p: self.data.run(_one(p, "name") or ""),
            "sql": lambda p: self.data.sql(_one(p, "q") or ""),
        }

    @property
    def url(self) -> str:
        """The address to open."""
        host, port = str(self.server_address[0]), int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def host_allowed(self, header: str) -> bool:
        """Refuse requests for another host name (DNS rebinding) when serving on loopback."""
        host = str(self.server_address[0])
        if not is_loopback(host):
            return True
        name = header.rsplit(":", 1)[0].strip("[]") if header else ""
        return is_loopback(name)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve and follow the store until ``shutdown``."""
        if not self._poller.is_alive():
            self._poller.start()
        super().serve_forever(poll_interval)

    def server_close(self) -> None:
        """Stop following the store, stop running queries, close the socket and the store."""
        self._stop.set()
        self.data.interrupt()
        super().server_close()
        if self._poller.is_alive():
            self._poller.join(timeout=1)
        self.data.close()

    def _follow(self) -> None:
        """Take a new snapshot every ``refresh_s`` (longer when a snapshot is slow to take)."""
        wait = self.refresh_s
        while not self._stop.wait(wait):
            started = time.monotonic()
            with contextlib.suppress(Exception):  # a store mid-change: the next poll sees it
                self.data.poll()
            wait = max(self.refresh_s, 2 * (time.monotonic() - started))

    def page(self) -> str:
        """The page, linking its assets."""
        html = static_text("index.html")
        head = (
            '<link rel="stylesheet" href="/static/app.css">\n'
            '<script src="/static/plotly.min.js"></script>'
        )
        tail = '<script src="/static/app.js"></script>'
        return html.replace("<!--HEAD-->", head).replace("<!--SCRIPTS-->", tail)

    def asset(self, name: str) -> bytes:
        """A static asset's bytes (read once)."""
        if name not in self._assets:
            self._assets[name] = static_text(name).encode()
        return self._assets[name]

    def _runs(self, p: dict[str, list[str]]) -> Any:
        columns = [c for c in (_one(p, "columns") or "").split(",") if c]
        return self.data.runs(
            split=_one(p, "split") or None,
            where=_one(p, "where"),
            sort=_one(p, "sort") or None,
            descending=_one(p, "desc") in ("1", "true"),
            columns=columns or None,
            offset=_int(_one(p, "offset"), 0, "offset"),
            limit=_int(_one(p, "limit"), 50, "limit"),
            names=p.get("name"),
        )


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None
