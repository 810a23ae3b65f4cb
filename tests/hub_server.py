"""A local stand-in for the Hugging Face Hub: real HTTP servers on 127.0.0.1.

It speaks the parts of the Hub protocol that ``huggingface_hub`` 2.4 (``hf_hub_download``,
``snapshot_download``, ``HfApi``, ``HfFileSystem``) and ``datasets`` 5.2 (``load_dataset``) use:

- ``GET /api/{models,datasets,spaces}/{org}/{name}[/revision/{rev}]``: repo info (``sha``,
  ``siblings``, ``gated``, ``private``; ``?blobs=true`` adds sizes and LFS info).
- ``GET /api/{type}s/{org}/{name}/tree/{rev}[/{path}]``: tree listing (``recursive``, ``expand``),
  cursor pagination through a ``Link: <...>; rel="next"`` header as on the Hub.
- ``POST /api/{type}s/{org}/{name}/paths-info/{rev}``: form field ``paths`` (repeated).
- ``GET /api/{type}s/{org}/{name}/refs``: branches and tags.
- ``HEAD``/``GET /{org}/{name}/resolve/{rev}/{path}``, ``/datasets/...`` and ``/spaces/...``:
  regular (git) files answer with a same-origin ``307`` to ``/api/resolve-cache/...`` carrying
  ``X-Repo-Commit`` and ``ETag`` (the git blob sha1), as the Hub does for small files; LFS files
  (``*.safetensors``, ``*.parquet``, ...) answer ``302`` with ``X-Linked-Etag`` (sha256),
  ``X-Linked-Size`` and a ``Location`` on a second server (another port: another origin, like the
  Hub's CDN), which serves the bytes without authentication and honours ``Range``.
- Errors as the Hub sends them: status plus ``X-Error-Code`` (``RepoNotFound``,
  ``RevisionNotFound``, ``EntryNotFound``, ``GatedRepo``) and ``X-Error-Message``; ``401`` for
  anonymous requests to missing or private repos, ``401``/``403`` ``GatedRepo`` for gated files.
- A forward proxy entry point: clients are pointed at it through ``HTTP(S)_PROXY`` so that any
  request leaving 127.0.0.1 is refused and logged (tests assert that nothing tried to get out).

Legacy single-name ids (``bert-base-uncased``) are served as the repo they were renamed to
(:meth:`HubServer.rename`), as the Hub does. Every request is logged (:class:`LoggedRequest`);
faults can be injected per file: cut the body after N bytes (the connection is closed mid-body),
stall mid-body until released, send the body slowly, or answer a status code. Run
``python -m tests.hub_server`` to serve the test repos by hand.
"""

from __future__ import annotations

import contextlib
import email.utils
import fnmatch
import hashlib
import io
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_PATTERNS = ("*.safetensors", "*.parquet", "*.bin", "*.arrow", "*.pt", "*.h5", "*.gguf")
PUBLIC_FILES_OF_GATED_REPOS = ("README.md", ".gitattributes")
TREE_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Blob:
    """A file's content as stored in a commit."""

    content: bytes
    lfs: bool

    @cached_property
    def git_sha1(self) -> str:
        """The git blob id of what git stores: the content, or the LFS pointer for LFS files."""
        data = self.pointer if self.lfs else self.content
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @cached_property
    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {len(self.content)}\n"
        ).encode()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    """A repository: commits, branches and tags, access rules."""

    repo_id: str
    repo_type: str  # "model" | "dataset"
    gated: bool = False
    private: bool = False
    granted_tokens: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = "2024-01-01T00:00:00.000Z"

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch, tag or (full) commit id points to."""
        oid = self.branches.get(revision) or self.tags.get(revision)
        if oid is None and revision in self.commits:
            oid = revision
        return self.commits.get(oid) if oid else None


@dataclass
class LoggedRequest:
    """One request as the servers saw it. ``server`` is ``"hub"``, ``"cdn"`` or ``"proxy"``."""

    server: str
    method: str
    path: str
    query: str
    status: int = 0
    range: str | None = None
    authorized: bool = False
    bytes_sent: int = 0
    cut: bool = False
    host: str | None = None

    @property
    def filename(self) -> str | None:
        """The repo file this request served (resolve, resolve-cache and CDN requests)."""
        if self.server == "cdn":
            return parse_qs(self.query).get("filename", [None])[0]
        m = re.search(
            r"/(?:resolve/[^/]+|resolve-cache/\w+s/[^/]+/[^/]+/[0-9a-f]{40})/(.+)$", self.path
        )
        return m.group(1) if m else None


@dataclass
class Fault:
    """A fault injected into the GET responses that carry ``filename``'s bytes.

    ``kind``: ``"cut"`` sends the headers of the whole response but only the body bytes before
    absolute file offset ``at_byte``, then closes the connection; ``"stall"`` sends those bytes and
    waits until :meth:`HubServer.release` (or 60 s); ``"throttle"`` sends the whole body at
    ``rate`` bytes per second; ``"status"`` answers ``status`` instead.
    ``times``: how many responses are affected (``None``: all).
    """

    filename: str
    kind: str
    at_byte: int = 0
    status: int = 503
    rate: int = 2048
    times: int | None = 1
    hits: int = 0

    def take(self, filename: str | None) -> bool:
        if filename != self.filename or (self.times is not None and self.hits >= self.times):
            return False
        self.hits += 1
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: HubServer, name: str) -> None:
        self.hub = hub
        self.name = name
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (Ctrl-C, a cut connection) are part of the tests, not errors.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class HubServer:
    """The Hub stand-in: the API/resolve server plus a CDN server on another port.

    Use as a context manager (or :meth:`start`/:meth:`stop`). ``url`` is what ``HF_ENDPOINT``
    should be set to; :meth:`client_env` gives the whole environment for a client process.
    """

    def __init__(self, valid_tokens: set[str] | None = None) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.renames: dict[str, str] = {}
        self.valid_tokens: set[str] = set(valid_tokens or ())
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.tree_page_size = TREE_PAGE_SIZE
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._commit_counter = 0
        self.hub = _Server(self, "hub")
        self.cdn = _Server(self, "cdn")
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.hub.url

    @property
    def cdn_url(self) -> str:
        return self.cdn.url

    def start(self) -> HubServer:
        for server in (self.hub, self.cdn):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._release.set()
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self, hf_home: str) -> dict[str, str]:
        """Environment variables pointing the HF libraries at this server and nowhere else."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HOME": hf_home,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_ETAG_TIMEOUT": "5",
            "HF_HUB_DOWNLOAD_TIMEOUT": "5",
            # Anything not for 127.0.0.1 goes to our proxy entry point, which refuses and logs it.
            "HTTP_PROXY": self.url,
            "HTTPS_PROXY": self.url,
            "ALL_PROXY": self.url,
            "http_proxy": self.url,
            "https_proxy": self.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    # -- repos ------------------------------------------------------------------------------------

    def create_repo(
        self,
        repo_id: str,
        repo_type: str = "model",
        *,
        gated: bool = False,
        private: bool = False,
        granted_tokens: set[str] | None = None,
    ) -> Repo:
        repo = Repo(repo_id, repo_type, gated, private, set(granted_tokens or ()))
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def rename(self, old_id: str, repo_id: str) -> None:
        """Serve the repo ``repo_id`` under the legacy single-name id ``old_id`` too."""
        self.renames[old_id] = repo_id

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes | str | None],
        *,
        repo_type: str = "model",
        branch: str = "main",
        title: str = "Upload files",
    ) -> str:
        """Commit ``files`` (``None`` deletes a path) on top of ``branch``; return the commit id."""
        repo = self.repos[(repo_type, repo_id)]
        parent = repo.resolve(branch)
        tree = dict(parent.files) if parent else {}
        for path, data in files.items():
            if data is None:
                tree.pop(path, None)
                continue
            content = data.encode() if isinstance(data, str) else data
            lfs = any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in LFS_PATTERNS)
            tree[path] = Blob(content, lfs)
        with self._lock:
            self._commit_counter += 1
            counter = self._commit_counter
        digest = hashlib.sha1(f"{repo_type}/{repo_id}/{counter}/{title}".encode())
        for path in sorted(tree):
            digest.update(f"{path}:{tree[path].git_sha1}".encode())
        oid = digest.hexdigest()
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1_700_000_000 + counter * 60))
        repo.commits[oid] = Commit(oid, title, date, tree)
        repo.branches[branch] = oid
        return oid

    def tag(self, repo_id: str, tag: str, revision: str, *, repo_type: str = "model") -> None:
        repo = self.repos[(repo_type, repo_id)]
        commit = repo.resolve(revision)
        assert commit is not None, revision
        repo.tags[tag] = commit.oid

    # -- faults and log ---------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()
        self._release.set()
        self._release = threading.Event()

    def release(self) -> None:
        """Let stalled responses continue."""
        self._release.set()

    def requests(
        self, server: str | None = None, method: str | None = None, contains: str | None = None
    ) -> list[LoggedRequest]:
        with self._lock:
            entries = list(self.log)
        return [
            r
            for r in entries
            if (server is None or r.server == server)
            and (method is None or r.method == method)
            and (contains is None or contains in r.path or contains in r.query)
        ]

    def downloads(self) -> list[LoggedRequest]:
        """GET requests that transferred file bytes (from the Hub or the CDN)."""
        return [
            r
            for r in self.requests(method="GET")
            if r.filename is not None and r.status in (200, 206) and r.server != "proxy"
        ]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    def _take_fault(self, filename: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.take(filename):
                    return fault
        return None

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)

    def cdn_location(self, blob: Blob, filename: str) -> str:
        name = quote(filename.rsplit("/", 1)[-1])
        return (
            f"{self.cdn_url}/repos/{blob.sha256[:2]}/{blob.sha256}"
            f"?filename={quote(filename, safe='')}"
            f"&response-content-disposition=attachment%3B+filename%3D%22{name}%22"
            f"&Expires=4102444800&Signature=stand-in"
        )

    def find_blob(self, sha256: str) -> Blob | None:
        for repo in self.repos.values():
            for commit in repo.commits.values():
                for blob in commit.files.values():
                    if blob.lfs and blob.sha256 == sha256:
                        return blob
        return None


class HubError(Exception):
    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_REPO_TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TYPE_SEGMENTS = {"models": "model", "datasets": "dataset", "spaces": "space"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing ---------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _begin(self) -> LoggedRequest:
        split = urlsplit(self.path)
        entry = LoggedRequest(
            server=self.server.name,
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            range=self.headers.get("Range"),
            authorized=self.headers.get("Authorization") is not None,
            host=self.headers.get("Host"),
        )
        if split.scheme or self.command == "CONNECT":  # a proxy request: absolute URL or tunnel
            entry.server = "proxy"
        self.hub._record(entry)
        return entry

    def _send(
        self,
        entry: LoggedRequest,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> None:
        entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            entry.bytes_sent += len(body)

    def _send_json(self, entry: LoggedRequest, payload: Any, headers: dict | None = None) -> None:
        self._send(entry, 200, json.dumps(payload).encode(), headers)

    def _send_error(self, entry: LoggedRequest, error: HubError) -> None:
        headers = dict(error.headers)
        if error.code:
            headers["X-Error-Code"] = error.code
        headers["X-Error-Message"] = error.message
        self._send(entry, error.status, json.dumps({"error": error.message}).encode(), headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    # -- dispatch ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_CONNECT(self) -> None:
        entry = self._begin()
        self.close_connection = True
        self._send(entry, 403, b'{"error": "no network in tests"}')

    def _dispatch(self) -> None:
        entry = self._begin()
        try:
            if entry.server == "proxy":
                self.close_connection = True
                raise HubError(403, None, "Requests outside 127.0.0.1 are refused in tests.")
            if self.server.name == "cdn":
                self._serve_cdn(entry)
            else:
                self._serve_hub(entry)
        except HubError as error:
            self._send_error(entry, error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- hub routes -------------------------------------------------------------------------------

    def _serve_hub(self, entry: LoggedRequest) -> None:
        raw_path = urlsplit(self.path).path
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]
        query = parse_qs(urlsplit(self.path).query)
        if parts[:2] == ["api", "resolve-cache"] and len(parts) >= 7:
            repo_type = _TYPE_SEGMENTS.get(parts[2])
            if repo_type is None:
                raise HubError(404, None, "Not Found")
            repo = self._repo(repo_type, f"{parts[3]}/{parts[4]}")
            commit = self._commit(repo, parts[5])
            self._serve_file(entry, repo, commit, "/".join(parts[6:]), direct=True)
            return
        if parts[0] == "api" and len(parts) >= 3 and parts[1] in _TYPE_SEGMENTS:
            repo_type = _TYPE_SEGMENTS[parts[1]]
            repo_id, rest = self._split_repo_id(parts[2:])
            repo = self._repo(repo_type, repo_id)
            if not rest and self.command == "GET":
                self._repo_info(entry, repo, "main", query)
            elif rest[:1] == ["revision"] and len(rest) == 2 and self.command == "GET":
                self._repo_info(entry, repo, rest[1], query)
            elif rest[:1] == ["tree"] and len(rest) >= 2 and self.command == "GET":
                self._tree(entry, repo, rest[1], "/".join(rest[2:]), query)
            elif rest[:1] == ["paths-info"] and len(rest) == 2 and self.command == "POST":
                self._paths_info(entry, repo, rest[1])
            elif rest == ["refs"] and self.command == "GET":
                self._refs(entry, repo)
            else:
                raise HubError(404, None, "Sorry, we can't find the page you are looking for.")
            return
        repo_type = "model"
        if parts[0] in ("datasets", "spaces"):
            repo_type, parts = _TYPE_SEGMENTS[parts[0]], parts[1:]
        repo_id, rest = self._split_repo_id(parts)
        if len(rest) >= 3 and rest[0] == "resolve" and self.command in ("GET", "HEAD"):
            repo = self._repo(repo_type, repo_id)
            commit = self._commit(repo, rest[1])
            self._serve_file(entry, repo, commit, "/".join(rest[2:]), direct=False)
            return
        raise HubError(404, None, "Sorry, we can't find the page you are looking for.")

    def _split_repo_id(self, parts: list[str]) -> tuple[str, list[str]]:
        """``(repo_id, the rest of the path)``: ``org/name``, or a legacy single-name id."""
        if parts and parts[0] in self.hub.renames:
            return parts[0], parts[1:]
        return "/".join(parts[:2]), parts[2:]

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        token = self._token()
        if token is not None and token not in self.hub.valid_tokens:
            raise HubError(401, None, "Invalid credentials in Authorization header")
        repo = self.hub.repos.get((repo_type, self.hub.renames.get(repo_id, repo_id)))
        if repo is None or (repo.private and token not in repo.granted_tokens):
            # The Hub does not tell missing repos from private ones; anonymous callers get a 401.
            status = 401 if token is None else 404
            raise HubError(status, "RepoNotFound", "Repository not found")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _repo_info(self, entry: LoggedRequest, repo: Repo, revision: str, query: dict) -> None:
        commit = self._commit(repo, revision)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(commit.files):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                blob = commit.files[path]
                sibling["size"] = blob.size
                sibling["blobId"] = blob.git_sha1
                if blob.lfs:
                    sibling["lfs"] = {
                        "sha256": blob.sha256,
                        "size": blob.size,
                        "pointerSize": len(blob.pointer),
                    }
            siblings.append(sibling)
        author = repo.repo_id.split("/")[0]
        payload: dict[str, Any] = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": author,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo.repo_type == "model":
            payload["modelId"] = repo.repo_id
            payload["library_name"] = "transformers"
        else:
            payload["description"] = ""
        self._send_json(entry, payload)

    def _entry_json(self, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        blob = commit.files[path]
        item: dict[str, Any] = {
            "type": "file",
            "oid": blob.git_sha1,
            "size": blob.size,
            "path": path,
        }
        if blob.lfs:
            item["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(blob.pointer)}
        if expand:
            item["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return item

    def _dir_json(self, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        digest = hashlib.sha1(path.encode())
        for name in sorted(commit.files):
            if name.startswith(path + "/"):
                digest.update(commit.files[name].git_sha1.encode())
        item: dict[str, Any] = {
            "type": "directory",
            "oid": digest.hexdigest(),
            "size": 0,
            "path": path,
        }
        if expand:
            item["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return item

    def _listing(self, commit: Commit, base: str, recursive: bool) -> list[tuple[str, str]]:
        """``(kind, path)`` pairs under ``base`` (``""``: the root), directories first per level."""
        prefix = base + "/" if base else ""
        dirs: set[str] = set()
        files: list[str] = []
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            segments = rel.split("/")
            if recursive:
                for depth in range(1, len(segments)):
                    dirs.add(prefix + "/".join(segments[:depth]))
                files.append(path)
            elif len(segments) > 1:
                dirs.add(prefix + segments[0])
            else:
                files.append(path)
        items = [("directory", d) for d in sorted(dirs)] + [("file", f) for f in files]
        return sorted(items, key=lambda kv: kv[1])

    def _tree(
        self, entry: LoggedRequest, repo: Repo, revision: str, path: str, query: dict
    ) -> None:
        commit = self._commit(repo, revision)
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        expand = query.get("expand", ["false"])[0].lower() == "true"
        path = path.strip("/")
        if path and path in commit.files:
            raise HubError(404, "EntryNotFound", f"{path} is not a directory")
        items = self._listing(commit, path, recursive)
        if path and not items:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {revision}")
        cursor = int(query.get("cursor", ["0"])[0])
        page_size = self.hub.tree_page_size
        page = items[cursor : cursor + page_size]
        payload = [
            (
                self._entry_json(commit, p, expand)
                if kind == "file"
                else self._dir_json(commit, p, expand)
            )
            for kind, p in page
        ]
        headers = {}
        if cursor + page_size < len(items):
            host = self.headers.get("Host") or self.server.url.split("//", 1)[1]
            next_query = f"recursive={str(recursive).lower()}&expand={str(expand).lower()}"
            next_url = (
                f"http://{host}{urlsplit(self.path).path}?{next_query}&cursor={cursor + page_size}"
            )
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send_json(entry, payload, headers)

    def _paths_info(self, entry: LoggedRequest, repo: Repo, revision: str) -> None:
        commit = self._commit(repo, revision)
        body = self._read_body().decode()
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            form = json.loads(body or "{}")
            paths = form.get("paths", [])
            expand = bool(form.get("expand", False))
        else:
            form = parse_qs(body)
            paths = form.get("paths", [])
            expand = form.get("expand", ["false"])[0].lower() == "true"
        result = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                result.append(self._entry_json(commit, path, expand))
            elif any(name.startswith(path + "/") for name in commit.files) or path == "":
                result.append(self._dir_json(commit, path, expand))
        self._send_json(entry, result)

    def _refs(self, entry: LoggedRequest, repo: Repo) -> None:
        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        self._send_json(
            entry,
            {
                "branches": [ref("heads", n, o) for n, o in sorted(repo.branches.items())],
                "converts": [],
                "tags": [ref("tags", n, o) for n, o in sorted(repo.tags.items())],
            },
        )

    def _serve_file(
        self, entry: LoggedRequest, repo: Repo, commit: Commit, path: str, *, direct: bool
    ) -> None:
        common = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes", "Vary": "Origin"}
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "EntryNotFound", "Entry not found", common)
        if repo.gated and path not in PUBLIC_FILES_OF_GATED_REPOS:
            token = self._token()
            kind = "dataset" if repo.repo_type == "dataset" else "model"
            if token is None:
                raise HubError(
                    401,
                    "GatedRepo",
                    f"Access to {kind} {repo.repo_id} is restricted. You must have access to it "
                    "and be authenticated to access it. Please log in.",
                    common,
                )
            if token not in repo.granted_tokens:
                page = f"https://huggingface.co/{_REPO_TYPE_PREFIX[repo.repo_type]}{repo.repo_id}"
                raise HubError(
                    403,
                    "GatedRepo",
                    f"Access to {kind} {repo.repo_id} is restricted and you are not in the "
                    f"authorized list. Visit {page} to ask for access.",
                    common,
                )
        if blob.lfs:
            headers = dict(common)
            headers["ETag"] = f'"{blob.git_sha1}"'
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(blob.size)
            headers["Location"] = self.hub.cdn_location(blob, path)
            self._send(entry, 302, b"", headers, content_type="text/plain; charset=utf-8")
            return
        if not direct:
            # The Hub answers small files with a redirect to its resolve cache on the same host.
            type_segment = f"{repo.repo_type}s"
            location = (
                f"/api/resolve-cache/{type_segment}/{repo.repo_id}/{commit.oid}/" f"{quote(path)}"
            )
            headers = dict(common)
            headers["ETag"] = f'"{blob.git_sha1}"'
            headers["Location"] = location
            self._send(entry, 307, b"", headers, content_type="text/plain; charset=utf-8")
            return
        headers = dict(common)
        headers["ETag"] = f'"{blob.git_sha1}"'
        headers["Last-Modified"] = email.utils.formatdate(1_700_000_000, usegmt=True)
        self._send_content(entry, blob.content, path, headers, "text/plain; charset=utf-8")

    # -- cdn --------------------------------------------------------------------------------------

    def _serve_cdn(self, entry: LoggedRequest) -> None:
        split = urlsplit(self.path)
        m = re.fullmatch(r"/repos/[0-9a-f]{2}/([0-9a-f]{64})", split.path)
        blob = self.hub.find_blob(m.group(1)) if m else None
        if blob is None or self.command not in ("GET", "HEAD"):
            self._send(
                entry, 404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
            )
            return
        filename = parse_qs(split.query).get("filename", [""])[0]
        headers = {
            "ETag": f'"{blob.sha256}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment; filename="{filename.rsplit("/", 1)[-1]}";',
            "Last-Modified": email.utils.formatdate(1_700_000_000, usegmt=True),
        }
        self._send_content(entry, blob.content, filename, headers, "binary/octet-stream")

    # -- bodies: ranges and faults ----------------------------------------------------------------

    def _send_content(
        self, entry: LoggedRequest, content: bytes, filename: str, headers: dict, ctype: str
    ) -> None:
        total = len(content)
        start, end, status = 0, total - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if m is None or (not m.group(1) and not m.group(2)):
                raise HubError(416, None, "Invalid range", {"Content-Range": f"bytes */{total}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:
                start, end = max(total - int(m.group(2)), 0), total - 1
            if start >= total or start > end:
                raise HubError(
                    416, None, "Range Not Satisfiable", {"Content-Range": f"bytes */{total}"}
                )
            status = 206
            headers = dict(headers, **{"Content-Range": f"bytes {start}-{end}/{total}"})
        body = content[start : end + 1]
        fault = self.hub._take_fault(filename) if self.command == "GET" else None
        if fault is not None and fault.kind == "status":
            raise HubError(fault.status, None, "Injected failure")
        entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault is None:
            self._write_chunks(entry, body)
            return
        if fault.kind == "throttle":
            chunk = max(1, fault.rate // 20)
            for offset in range(0, len(body), chunk):
                self._write_chunks(entry, body[offset : offset + chunk])
                self.wfile.flush()
                time.sleep(chunk / fault.rate)
            return
        keep = max(0, min(len(body), fault.at_byte - start))
        self._write_chunks(entry, body[:keep])
        self.wfile.flush()
        if fault.kind == "stall":
            self.hub._release.wait(timeout=60)
        entry.cut = True
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write_chunks(self, entry: LoggedRequest, body: bytes) -> None:
        view = io.BytesIO(body)
        while chunk := view.read(64 * 1024):
            self.wfile.write(chunk)
            entry.bytes_sent += len(chunk)


def main() -> None:  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    from tests.hub_repos import build_demo_repos  # noqa: PLC0415 - only for manual runs

    with HubServer(valid_tokens={"hf_demo_token"}) as hub:
        build_demo_repos(hub, granted_tokens={"hf_demo_token"})
        print(f"HF_ENDPOINT={hub.url}  (CDN at {hub.cdn_url}); repos:", flush=True)
        for repo_type, repo_id in sorted(hub.repos):
            print(f"  {repo_type:8s} {repo_id}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.seconds)
        for r in hub.log:
            print(r.server, r.method, r.path, r.query, r.status, r.range or "", flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
