"""`import common` and its subpackages stay light: no torch, transformers, datasets or pandas."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "datasets", "pandas", "huggingface_hub", "matplotlib")


def test_importing_common_pulls_in_no_heavy_library() -> None:
    code = (
        "import sys, common, common.models, common.training, common.data, common.utils, "
        "common.visualization, common.paths\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_exports_resolve_and_unknown_names_fail() -> None:
    import common.utils

    assert callable(common.utils.load_config)
    assert "load_config" in dir(common.utils)
    try:
        common.utils.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
