"""Name claims: which experiment owns a name, decided by atomic file-system operations.

``names/<name>`` (a quoted name plus a hash of its exact spelling) is the claim of one
experiment on its name: a small JSON file holding the experiment's identity (``id``, a random
token, or the owner a new run gives). A claim is created only with an exclusive ``os.link`` (the
first creator wins, on one machine and on a shared folder) and taken away only with an
``os.rename`` into ``tmp/`` (exactly one taker wins):

- a save creates the claim of its name when there is none (and otherwise joins the experiment);
- ``claim_experiment`` (a new run, ``--reproduce``, a sweep's run) claims a name for an owner and
  is refused when another experiment owns it or has rows under it;
- a rename takes the old name's claim, then claims the new name with the same identity: of two
  renames onto one name exactly one links it, and the other puts its own claim back;
- a delete takes the claim, and a rename or delete releases it once its change is published.

While a rename or delete holds a claim (``tmp/<host>.<pid>.<token>.taken-<hash>``) the name is
busy for other renames and deletes. Stores written before claims existed work unchanged: a name
with rows and no claim is claimed the first time a change needs it. No clock takes part.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

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
    quoted = urllib.parse.quote(name, safe="")[:80]
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return root / NAMES / f"{quoted}-{digest}.json"


def owner_of(root: Path, name: str) -> str | None:
    """The identity that owns ``name`` now, or None when no claim exists."""
    return _identity(claim_file(root, name))


def _identity(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_bytes())
        return str(doc["id"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return "(unreadable claim)"


def _link(root: Path, name: str, identity: str) -> bool:
    """Create ``name``'s claim for ``identity`` unless one exists; True when this call made it.

    Raises:
        StoreWriteError: the claim cannot be written.
    """
    doc = {"name": name, "id": identity, "host": hostname(), "pid": os.getpid()}
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
        _link(root, name, layout.new_id())


def claim_experiment(
    name: str, owner: str, *, storage_dir: str | os.PathLike[str] | None = None
) -> None:
    """Make ``owner`` (a new run's identity, e.g. its run id) the owner of experiment ``name``.

    Atomic against every other change that claims a name (another run, a rename onto ``name``,
    a first save), on one machine and on a shared folder. Claiming a name the same owner holds
    already is allowed (a resumed run).

    Raises:
        ExperimentExistsError: another experiment owns ``name`` or has rows under it.
        InvalidExperimentNameError: unsafe name.
        StoreWriteError: the store cannot be written.
    """
    from common.experiments.schema import validate_experiment_name
    from common.experiments.write import has_rows

    validate_experiment_name(name)
    root = layout.resolve_dir(storage_dir, create=True)
    claim(root, name, owner, has_rows=lambda n: has_rows(root, n))


def claim(root: Path, name: str, identity: str, *, has_rows: HasRows) -> None:
    """Claim ``name`` for ``identity``: exactly one of several claimers wins.

    Raises:
        ExperimentExistsError: another identity owns it, or it has rows without a claim (a store
            written before claims existed).
    """
    if not _link(root, name, identity):
        holder = owner_of(root, name)
        if holder == identity:
            return
        if holder is None:  # released meanwhile: try once more
            return claim(root, name, identity, has_rows=has_rows)
        raise _exists(name, has_rows(name))
    if has_rows(name):
        release(root, name, identity)
        raise _exists(name, True)


def release(root: Path, name: str, identity: str) -> None:
    """Remove ``name``'s claim if ``identity`` owns it (a rename or delete that failed)."""
    path = claim_file(root, name)
    if _identity(path) == identity:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


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


def _busy(root: Path, name: str) -> bool:
    """Whether a live rename or delete holds ``name``'s claim (one held by a dead process of this
    host is dropped)."""
    suffix = _taken_pattern(name)
    try:
        entries = [e for e in os.scandir(root / layout.TMP) if e.name.endswith(suffix)]
    except OSError:
        return False
    for entry in entries:
        owner = layout.tmp_owner(entry.name)
        alive = True
        if owner is not None and owner[0] == layout.safe_host():
            try:
                os.kill(owner[1], 0)
            except ProcessLookupError:
                alive = False
            except OSError:
                pass
        if alive:
            return True
        with contextlib.suppress(OSError):  # its taker died (whether or not its change was
            os.unlink(entry.path)  # published, the rows now say whether the name is in use)
    return False


@contextlib.contextmanager
def taking(root: Path, name: str, *, has_rows: HasRows) -> Iterator[str]:
    """Take experiment ``name``'s claim for a rename or delete; yields its identity.

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
            pass
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise layout.write_error(root, exc) from exc
        # no claim: another change holds it, it was never made (an older store), or no such
        # experiment. Look in this order: a change publishes before it lets go of the claim.
        if _busy(root, name):
            raise ExperimentBusyError(
                f"experiment {name!r} is being renamed or deleted by another process; try again "
                "when it has finished"
            )
        if not has_rows(name):
            raise UnknownExperimentError(f"unknown experiment {name!r}")
        _link(root, name, layout.new_id())
    else:
        raise ExperimentBusyError(f"experiment {name!r} kept changing; try again")
    identity = _identity(held) or layout.new_id()
    try:
        yield identity
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(held, claim_file(root, name))
        raise
    with contextlib.suppress(OSError):
        os.unlink(held)
