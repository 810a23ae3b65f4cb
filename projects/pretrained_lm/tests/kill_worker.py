"""``projects.pretrained_lm.train`` that SIGKILLs itself just before the rename whose destination
matches ``KILL_AT_RENAME`` (a regular expression): a real kill in the middle of a real checkpoint
write. ``python kill_worker.py ARGS`` takes the train script's arguments."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from projects.pretrained_lm.train import main  # noqa: E402


def _kill_at_rename(pattern: str) -> None:
    def guard(real: Any) -> Any:
        def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if re.search(pattern, str(dst)):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst, *args, **kwargs)

        return rename

    os.rename = guard(os.rename)  # type: ignore[assignment]
    os.replace = guard(os.replace)  # type: ignore[assignment]


if __name__ == "__main__":
    if os.environ.get("KILL_AT_RENAME"):
        _kill_at_rename(os.environ["KILL_AT_RENAME"])
    sys.exit(main(sys.argv[1:]))
