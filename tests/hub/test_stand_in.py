"""The Hub stand-in (tests/hub_server.py) itself.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import hashlib

from tests.hub_fixtures import (
    repo_file,
)
from tests.hub_repos import (
    DATASET_REPO,
    MODEL_REPO,
)
from tests.hub_server import HubServer


def test_stand_in_speaks_the_hub_protocol(hub: HubServer):
    """Pagination, paths-info, refs and Range through the real client API."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=False)
    hub.tree_page_size = 3
    try:
        tree = list(api.list_repo_tree(MODEL_REPO, recursive=True))
    finally:
        hub.tree_page_size = 1000
    paths = {item.path for item in tree}
    assert {"extra", "extra/notes.txt", "model.safetensors"} <= paths
    assert len(hub.requests(contains="cursor=")) >= 2  # followed the Link header
    lfs = next(item for item in tree if item.path == "model.safetensors")
    assert (
        lfs.lfs.sha256
        == hashlib.sha256(repo_file(hub, MODEL_REPO, "model.safetensors")).hexdigest()
    )

    info = api.get_paths_info(DATASET_REPO, ["README.md", "data", "missing"], repo_type="dataset")
    assert [(type(i).__name__, i.path) for i in info] == [
        ("RepoFile", "README.md"),
        ("RepoFolder", "data"),
    ]
    refs = api.list_repo_refs(MODEL_REPO)
    assert [t.name for t in refs.tags] == ["v1.0"] and [b.name for b in refs.branches] == ["main"]

    import urllib.request

    url = hub.cdn_location(
        hub.repos[("model", MODEL_REPO)].resolve("main").files["model.safetensors"],  # type: ignore[union-attr]
        "model.safetensors",
    )
    request = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"].startswith("bytes 10-19/")
        assert response.read() == repo_file(hub, MODEL_REPO, "model.safetensors")[10:20]
