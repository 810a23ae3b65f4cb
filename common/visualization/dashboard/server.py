"""The dashboard's HTTP server (standard library ``http.server``): the page, its static assets
and a JSON API over ``Dashboard``; a background thread takes a new store snapshot every
``refresh_s`` seconds so open pages follow runs while they train.

Routes: GET ``/`` the page; ``/static/app.js``, ``/static/app.css``,
``/static/plotly.min.js``; ``/api/meta``, ``/api/state``, ``/api/runs``, ``/api/curves``,
``/api/compare``, ``/api/run``, ``/api/sql``, ``/api/parcoords``, ``/api/scatter``,
``/api/importance``. POST (a JSON body) ``/api/curves`` (``{"names": [...]}``: the curves of
many runs in one request) and the only writes, ``/api/tag``, ``/api/untag``, ``/api/note``
(``{"name", "tag"}`` / ``{"name", "note"}``), accepted only from the page itself on a loopback
address: the Host and Origin headers must name this server and the ``X-Dashboard-Token`` header
must hold the random token embedded in the page; anything else is refused with 403. Nothing else
is served.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from common.visualization.dashboard import views
from common.visualization.dashboard.queries import QUERY_TIMEOUT_S, Dashboard, DashboardError
from common.visualization.dashboard.run_page import run_page

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


MAX_BODY = 1 << 20
"""The largest POST body accepted (bytes)."""
TOKEN_HEADER = "X-Dashboard-Token"
WRITES = ("tag", "untag", "note")


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

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        name = path[5:] if path.startswith("/api/") else ""
        refusal = self.server.post_refusal(
            self.headers.get("Host", ""),
            self.headers.get("Origin"),
            self.headers.get(TOKEN_HEADER) if name in WRITES else None,
            write=name in WRITES,
        )
        if refusal:
            self.close_connection = True
            self._send(HTTPStatus.FORBIDDEN, refusal.encode(), "text/plain; charset=utf-8")
            return
        if name not in (*WRITES, "curves"):
            self.close_connection = True
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        try:
            length = _int(self.headers.get("Content-Length"), -1, "Content-Length")
        except DashboardError:
            length = -1
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json" or not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send(
                HTTPStatus.BAD_REQUEST,
                b"a JSON body (Content-Type: application/json) of at most 1 MiB",
                "text/plain",
            )
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._api(lambda p: _bad("the body must be a JSON object"), {})
            return
        if name == "curves":
            self._api(lambda p: self.server.data.curves(_strings(body, "names")), {})
        else:
            self._api(lambda p: self.server.annotate(name, body), {})

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
        self.token = secrets.token_urlsafe(32)
        """Embedded in the page; a write must send it back (``X-Dashboard-Token``)."""
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
            "run": lambda p: run_page(self.data, _one(p, "name") or ""),
            "sql": lambda p: self.data.sql(_one(p, "q") or ""),
            "parcoords": lambda p: views.parallel_coordinates(self.data, **_view_args(p)),
            "scatter": lambda p: views.scatter(self.data, x=_one(p, "x"), **_view_args(p, False)),
            "importance": lambda p: views.importance(
                self.data, study=_one(p, "study") or None, **_view_args(p)
            ),
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

    def post_refusal(
        self, host: str, origin: str | None, token: str | None, *, write: bool
    ) -> str | None:
        """Why a POST is refused (None: accepted). Every POST needs a Host naming this server
        and, when the browser sends one, an Origin that is this server's; a write also needs
        the server on loopback, an Origin and the page's token."""
        if not self.host_allowed(host):
            return "unexpected Host header"
        port = int(self.server_address[1])
        if origin is not None or write:
            parts = urlsplit(origin or "")
            try:
                origin_port = parts.port
            except ValueError:
                origin_port = None
            if not (
                parts.scheme == "http"
                and parts.hostname is not None
                and is_loopback(parts.hostname)
                and origin_port == port
                and host.rsplit(":", 1)[-1] == str(port)
            ):
                return "refused: this request does not come from the dashboard's page"
        if write:
            if not is_loopback(str(self.server_address[0])):
                return "refused: tags and notes are edited only on a dashboard bound to 127.0.0.1"
            if not token or not hmac.compare_digest(token, self.token):
                return "refused: missing or wrong dashboard token (reload the page)"
        return None

    def annotate(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """Write a tag, untag or note through the store (``tag_experiment``,
        ``untag_experiment``, ``set_note``); the run's tags and note afterwards."""
        from common.experiments import (
            ExperimentStoreError,
            set_note,
            tag_experiment,
            untag_experiment,
        )

        name = body.get("name")
        if not isinstance(name, str):
            raise DashboardError('name the run: {"name": ...}')
        try:
            if op == "note":
                note = body.get("note")
                if note is not None and not isinstance(note, str):
                    raise DashboardError("a note is text")
                set_note(name, note, storage_dir=self.data.root)
            else:
                tag = body.get("tag")
                if not isinstance(tag, str):
                    raise DashboardError('name the tag: {"tag": ...}')
                write = tag_experiment if op == "tag" else untag_experiment
                write(name, tag, storage_dir=self.data.root)
        except ExperimentStoreError as exc:
            raise DashboardError(str(exc)) from None
        self.data.poll(force=True)
        run = run_page(self.data, name)
        return {"name": name, "tags": run["tags"], "note": run["note"]}

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
            f'<meta name="dashboard-token" content="{self.token}">\n'
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


def _view_args(p: dict[str, list[str]], columns: bool = True) -> dict[str, Any]:
    args: dict[str, Any] = {
        "split": _one(p, "split") or None,
        "metric": _one(p, "metric") or None,
        "stat": _one(p, "stat") or "best",
        "where": _one(p, "where"),
    }
    if columns:
        args["columns"] = [c for c in (_one(p, "columns") or "").split(",") if c] or None
    return args


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DashboardError(f"{key!r} must be a list of names")
    return value


def _bad(message: str) -> Any:
    raise DashboardError(message)


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None
