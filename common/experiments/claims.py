"""Name claims: which experiment owns a name, decided by atomic file-system operations.

``names/<name>`` (a quoted name plus a hash of its exact spelling) is the claim of one
experiment on its name: a small JSON file holding the experiment's identity (``id``, a random
token that stays with the experiment through renames: tags and notes hang on it) and the owner
that claimed it (a new run's id), if any. A claim is created only with an exclusive ``os.link`` (the
first creator wins, on one machine and on a shared folder) and taken away only with an
``os.rename`` into ``tmp/`` (exactly one taker wins):

- a save creates the claim of its name when there is none (and otherwise joins the experiment);
- ``claim_experiment`` (``write``: a new run, ``--reproduce``, a sweep's run) claims a name for
  an owner and is refused when another experiment owns it or has rows under it;
- a rename takes the old name's claim, then claims the new name with the same identity: of two
  renames onto one name exactly one links it, and the other puts its own claim back;
- a delete takes the claim, and a rename or delete releases it once its change is published.

While a rename or delete holds a claim (``tmp/<host>.<pid>.<token>.taken-<hash>``) the name is
busy for other renames and deletes. Stores written before claims existed work unchanged: a name
with rows and no claim is claimed the first time a change needs it. No clock takes part.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from common.experiments import layout
from common.experiments.errors import (
    ExperimentBusyError,
    ExperimentExistsError,
    UnknownExperimentError,
)
from common.utils.provenance import hostname

NAMES = "names"

HasRows = Callable[[str], bool]
"""Whether an experiment has visible rows now (asked on a fresh snapshot)."""


def claim_file(root: Path, name: str) -> Path:
    """The claim file of experiment ``name`` (exact spelling; safe on case-insensitive disks)."""
    return root / NAMES / _file_name(name)


@functools.lru_cache(maxsize=4096)
def _file_name(name: str) -> str:
    quoted = urllib.parse.quote(name, safe="")[:80]
    return f"{quoted}-{hashlib.sha256(name.encode()).hexdigest()[:16]}.json"


class Claim(NamedTuple):
    """One experiment's claim on its name: its identity (random, kept through renames; tags
    and notes hang on it) and the owner that claimed it (a run's id), if any."""

    id: str
    owner: str | None = None


def claim_of(root: Path, name: str) -> Claim | None:
    """The claim on ``name`` now, or None when there is none."""
    return _read(claim_file(root, name))


def owner_of(root: Path, name: str) -> str | None:
    """The owner (a run's id) or else the identity that holds ``name`` now; None: no claim."""
    held = claim_of(root, name)
    return None if held is None else held.owner or held.id


def all_claims(root: Path) -> Iterator[tuple[str, Claim]]:
    """``(name, claim)`` for every readable claim of the store."""
    try:
        files = sorted(os.listdir(root / NAMES))
    except OSError:
        return
    for file in files:
        try:
            doc = json.loads((root / NAMES / file).read_bytes())
            owner = doc.get("owner")
            yield str(doc["name"]), Claim(str(doc["id"]), None if owner is None else str(owner))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue


def _read(path: Path) -> Claim | None:
    try:
        doc = json.loads(path.read_bytes())
        owner = doc.get("owner")
        return Claim(str(doc["id"]), None if owner is None else str(owner))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Claim("(unreadable claim)")


def _link(root: Path, name: str, held: Claim) -> bool:
    """Create ``name``'s claim unless one exists; True when this call made it.

    Raises:
        StoreWriteError: the claim cannot be written.
    """
    doc = {"name": name, "id": held.id, "owner": held.owner, "host": hostname()}
    tmp = layout.tmp_path(root, ".claim")
    try:
        try:
            tmp.write_text(json.dumps(doc))
        except FileNotFoundError:
            (root / layout.TMP).mkdir(exist_ok=True)
            tmp.write_text(json.dumps(doc))
        target = claim_file(root, name)
        try:
            os.link(tmp, target)
        except FileNotFoundError:
            (root / NAMES).mkdir(exist_ok=True)
            os.link(tmp, target)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise layout.write_error(root, exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def ensure_claimed(root: Path, name: str) -> None:
    """Claim ``name`` for a new experiment unless some experiment owns it (a save joins it).

    Raises:
        StoreWriteError: the claim cannot be written.
    """
    if not claim_file(root, name).exists():
        _link(root, name, Claim(layout.new_id()))


def claim(root: Path, name: str, wanted: Claim, *, has_rows: HasRows, rejoin: bool = False) -> None:
    """Claim ``name`` for ``wanted``: exactly one of several claimers wins. With ``rejoin``, a
    claim the same owner holds counts as won (a run claiming its name again).

    Raises:
        ExperimentExistsError: another experiment holds it, or it has rows without a claim (a
            store written before claims existed).
    """
    for _ in range(10):
        if _link(root, name, wanted):
            if has_rows(name):
                release(root, name, wanted)
                raise _exists(name, True)
            return
        holder = claim_of(root, name)
        if holder is None:  # released meanwhile: try again
            continue
        if rejoin and wanted.owner is not None and holder.owner == wanted.owner:
            return
        raise _exists(name, has_rows(name))
    raise ExperimentBusyError(f"the claim on {name!r} kept changing; try again")


def release(root: Path, name: str, held: Claim) -> None:
    """Remove ``name``'s claim if it is ``held`` (a change that failed lets go of it)."""
    path = claim_file(root, name)
    if _read(path) == held:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def identity_of(root: Path, name: str, *, has_rows: HasRows) -> Claim:
    """The claim of experiment ``name``, made now if it has rows and none (an older store).

    Raises:
        UnknownExperimentError: ``name`` has neither a claim nor rows.
        ExperimentBusyError: another process is renaming or deleting ``name``.
    """
    for _ in range(10):
        held = claim_of(root, name)
        if held is not None:
            return held
        _claim_missing(root, name, has_rows)
    raise ExperimentBusyError(f"experiment {name!r} kept changing; try again")


def _claim_missing(root: Path, name: str, has_rows: HasRows) -> None:
    """``name`` has no claim: another change holds it, it was never made (an older store), or
    there is no such experiment. Looked at in this order: a change publishes before it lets go
    of the claim it holds."""
    busy, dead = _held_elsewhere(root, name)
    if busy:
        raise ExperimentBusyError(
            f"experiment {name!r} is being renamed or deleted by another process; try again "
            "when it has finished"
        )
    rows = has_rows(name)
    for path in dead:  # a taker died: its change was published (no rows) or never happened
        with contextlib.suppress(OSError):
            if rows:
                os.link(path, claim_file(root, name))  # the claim back, with its identity
        with contextlib.suppress(OSError):
            os.unlink(path)
    if not rows:
        raise UnknownExperimentError(f"unknown experiment {name!r}")
    _link(root, name, Claim(layout.new_id()))


def _exists(name: str, rows: bool) -> ExperimentExistsError:
    if rows:
        return ExperimentExistsError(
            f"an experiment named {name!r} exists; choose another name, or delete or rename it "
            "first"
        )
    return ExperimentExistsError(
        f"the name {name!r} is taken: another change is giving it to an experiment right now (a "
        "rename, a new run, a first save), or one stopped before storing any rows; choose "
        f"another name, or if nothing is running free it with: "
        f"python tools/query_experiments.py --delete {name}"
    )


def _taken_pattern(name: str) -> str:
    return ".taken-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def _held_elsewhere(root: Path, name: str) -> tuple[bool, list[str]]:
    """Whether a live rename or delete holds ``name``'s claim, and the claims that dead takers
    (processes of this host that are gone) left under ``tmp/``."""
    suffix = _taken_pattern(name)
    try:
        entries = [e for e in os.scandir(root / layout.TMP) if e.name.endswith(suffix)]
    except OSError:
        return False, []
    dead = []
    for entry in entries:
        owner = layout.tmp_owner(entry.name)
        if owner is None or owner[0] != layout.safe_host():
            return True, []  # another host's: only it can tell
        try:
            os.kill(owner[1], 0)
        except ProcessLookupError:
            dead.append(entry.path)
            continue
        except OSError:
            pass
        return True, []
    return False, dead


@contextlib.contextmanager
def taking(root: Path, name: str, *, has_rows: HasRows) -> Iterator[Claim]:
    """Take experiment ``name``'s claim for a rename or delete; yields it.

    On success of the block the claim is released (the name is free); on failure it is put
    back. Of several concurrent takers exactly one gets the claim.

    Raises:
        UnknownExperimentError: ``name`` has neither a claim nor rows.
        ExperimentBusyError: another process is renaming or deleting ``name``.
    """
    held = layout.tmp_path(root, _taken_pattern(name))
    for _ in range(10):
        try:
            os.rename(claim_file(root, name), held)
            break
        except FileNotFoundError:
            _claim_missing(root, name, has_rows)
        except OSError as exc:
            raise layout.write_error(root, exc) from exc
    else:
        raise ExperimentBusyError(f"experiment {name!r} kept changing; try again")
    taken = _read(held) or Claim(layout.new_id())
    try:
        yield taken
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(held, claim_file(root, name))
        raise
    with contextlib.suppress(OSError):
        os.unlink(held)
