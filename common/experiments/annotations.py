"""Tags and notes on experiments, kept as changes with the guarantees of a rename.

They hang on the experiment's identity (its name claim, see ``claims``), not on its name: a
rename carries them, a delete leaves them with no experiment (they are never shown again), and
compaction and repair, which rewrite rows, never touch them. Layout::

    annotations/<identity>/<event>.json   one change each: tag, untag or note (immutable)
    annotations/<identity>.<id>.name      the name last seen (a hint, checked against the claim)

Every change publishes its event, then a new hint (under a new file name) and removes the hints
it saw before, so each change adds a name to ``annotations/`` itself: listing that one folder
tells a reader whether anything changed (``shared``).

Every change is one new file, written under ``tmp/`` and renamed into place, so concurrent
changes from many processes or machines all land. Order needs no clock, as in the row store: an
untag names the tag events it removes (those its writer saw) and a note names the notes it
replaces, so a tag added meanwhile stays. Two notes written at once, neither seeing the other,
are both kept on disk; the one with the larger event id is shown.

The public calls (``tag_experiment``, ``untag_experiment``, ``set_note``) are in ``write``: they
find the experiment's identity through its claim, which needs to know whether it has rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from common.experiments import claims, layout
from common.experiments.errors import InvalidResultsError, StoreNotFoundError

ANNOTATIONS = "annotations"
MAX_TAG_LENGTH = 100
MAX_NOTE_LENGTH = 100_000
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_EVENT_RE = re.compile(r"^[0-9a-f]{16}\.json$")
_HINT = ".name"


class Annotations(NamedTuple):
    """An experiment's tags (sorted) and note (None when it has none)."""

    tags: list[str]
    note: str | None


def valid_tags(tags: Iterable[Any]) -> list[str]:
    """``tags`` without repeats, in order.

    Raises:
        InvalidResultsError: a tag that is not text, empty, longer than 100 characters, with
            surrounding whitespace or a control character.
    """
    out: list[str] = []
    for tag in tags:
        problem = None
        if not isinstance(tag, str):
            problem = f"it is {type(tag).__name__}, not text"
        elif not tag:
            problem = "it is empty"
        elif len(tag) > MAX_TAG_LENGTH:
            problem = f"it is longer than {MAX_TAG_LENGTH} characters"
        elif tag != tag.strip():
            problem = "it starts or ends with whitespace"
        elif _CONTROL_RE.search(tag):
            problem = "it contains a control character"
        if problem:
            raise InvalidResultsError(f"invalid tag {tag!r}: {problem}")
        if tag not in out:
            out.append(tag)
    return out


def valid_note(text: Any) -> str | None:
    """``text`` as a note (None or empty: no note).

    Raises:
        InvalidResultsError: not text, or longer than 100,000 characters.
    """
    if text is not None and not isinstance(text, str):
        raise InvalidResultsError(f"a note must be text, got {type(text).__name__}")
    if text is not None and len(text) > MAX_NOTE_LENGTH:
        raise InvalidResultsError(f"a note is at most {MAX_NOTE_LENGTH:,} characters")
    return text or None


def add_tags(root: Path, identity: str, name: str, tags: list[str]) -> list[str]:
    """Add ``tags`` (checked by ``valid_tags``) to the experiment of ``identity``, now called
    ``name``; returns its tags afterwards.

    Raises:
        StoreWriteError: the store cannot be written.
    """
    if tags:
        _write_event(root, identity, name, {"op": "tag", "tags": tags})
    return _state(root, identity).tags


def remove_tags(root: Path, identity: str, name: str, tags: list[str]) -> list[str]:
    """Remove ``tags`` from the experiment of ``identity`` (those it does not have are
    ignored); returns its tags afterwards. A tag added by someone else meanwhile stays.

    Raises:
        StoreWriteError: the store cannot be written.
    """
    wanted = set(tags)
    drop = [
        [event, tag]
        for event, tag in sorted(_live_tags(_events(root, identity)))
        if tag in wanted  # the tag events this writer sees
    ]
    if drop:
        _write_event(root, identity, name, {"op": "untag", "drop": drop})
    return _state(root, identity).tags


def replace_note(root: Path, identity: str, name: str, text: str | None) -> None:
    """Set the note of the experiment of ``identity`` to ``text`` (checked by ``valid_note``;
    None or empty: no note), replacing the notes this writer sees.

    Raises:
        StoreWriteError: the store cannot be written.
    """
    replaced = sorted(_live_notes(_events(root, identity)))
    _write_event(root, identity, name, {"op": "note", "text": text or None, "drop": replaced})


def experiment_annotations(
    storage_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Annotations]:
    """Every experiment that has tags or a note: experiment name -> ``Annotations``.

    Experiments without any are left out; a deleted experiment's tags and notes never appear
    (not even under a later experiment of the same name).

    Raises:
        StoreNotFoundError: the store folder does not exist.
    """
    root = layout.resolve_dir(storage_dir, create=False)
    try:
        listing = sorted(os.listdir(root / ANNOTATIONS))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc
    identities = [f for f in listing if "." not in f]
    names = _names_of(root, identities, listing)
    out: dict[str, Annotations] = {}
    for identity in identities:
        name = names.get(identity)
        if name is None:
            continue
        state = _state(root, identity)
        if state.tags or state.note is not None:
            out[name] = state
    return out


def record_annotated_name(root: Path, identity: str, name: str) -> None:
    """Note that ``identity`` is now called ``name`` (after a rename), if it has annotations."""
    if (root / ANNOTATIONS / identity).is_dir():
        with contextlib.suppress(OSError):
            _write_hint(root, identity, name)


def forget_annotations(root: Path, identity: str) -> None:
    """Remove the tags and notes of a deleted experiment (they belong to no name any more)."""
    folder = root / ANNOTATIONS / identity
    if not folder.is_dir():
        return
    aside = layout.tmp_path(root, ".forgotten")
    with contextlib.suppress(OSError):
        os.rename(folder, aside)
        shutil.rmtree(aside, ignore_errors=True)
    for hint in _hints(root, identity):
        with contextlib.suppress(OSError):
            os.unlink(root / ANNOTATIONS / hint)


# --------------------------------------------------------------------------------------------


def _publish(root: Path, final: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as ``final``: a temporary file, fsynced, renamed into place."""
    tmp = layout.tmp_path(root, ".annotation")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            (root / layout.TMP).mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, json.dumps(doc, ensure_ascii=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, final)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise layout.write_error(root, exc) from exc


def _write_event(root: Path, identity: str, name: str, doc: dict[str, Any]) -> None:
    _publish(root, root / ANNOTATIONS / identity / f"{layout.new_id()}.json", doc)
    with contextlib.suppress(OSError):  # only a hint: a reader checks it against the claim
        _write_hint(root, identity, name)


def _hints(root: Path, identity: str) -> list[str]:
    """The file names of ``identity``'s name hints in ``annotations/``."""
    try:
        listing = os.listdir(root / ANNOTATIONS)
    except OSError:
        return []
    return [f for f in listing if f.startswith(identity + ".") and f.endswith(_HINT)]


def _write_hint(root: Path, identity: str, name: str) -> None:
    """Publish ``name`` as ``identity``'s hint under a new file name, then remove the hints seen
    before (a hint written meanwhile by another change stays: it holds a name too)."""
    before = _hints(root, identity)
    _publish(root, root / ANNOTATIONS / f"{identity}.{layout.new_id()}{_HINT}", {"name": name})
    for old in before:
        with contextlib.suppress(OSError):
            os.unlink(root / ANNOTATIONS / old)


def _events(root: Path, identity: str) -> dict[str, dict[str, Any]]:
    """Event id -> its document, for every readable change of ``identity``."""
    folder = root / ANNOTATIONS / identity
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    out = {}
    for file in names:
        if not _EVENT_RE.match(file):
            continue
        key = (str(folder), file)
        doc = _EVENT_CACHE.get(key)
        if doc is None:
            try:
                doc = json.loads((folder / file).read_bytes())
            except (OSError, ValueError):
                continue
            if not isinstance(doc, dict):
                continue
            if len(_EVENT_CACHE) > 100_000:
                _EVENT_CACHE.clear()
            _EVENT_CACHE[key] = doc
        out[file[:16]] = doc
    return out


_EVENT_CACHE: dict[tuple[str, str], dict[str, Any]] = {}  # events never change once written
_HINT_CACHE: dict[str, str] = {}  # nor do hints (each is written under a new name)


def _live_tags(events: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    dropped = {
        (str(pair[0]), str(pair[1]))
        for doc in events.values()
        if doc.get("op") == "untag"
        for pair in doc.get("drop", ())
        if isinstance(pair, list) and len(pair) == 2
    }
    live = set()
    for event, doc in events.items():
        if doc.get("op") == "tag":
            for tag in doc.get("tags", ()):
                if isinstance(tag, str) and (event, tag) not in dropped:
                    live.add((event, tag))
    return live


def _live_notes(events: dict[str, dict[str, Any]]) -> set[str]:
    notes = {e for e, doc in events.items() if doc.get("op") == "note"}
    dropped = {str(d) for e in notes for d in events[e].get("drop", ())}
    return notes - dropped


def _state(root: Path, identity: str) -> Annotations:
    events = _events(root, identity)
    tags = sorted({tag for _, tag in _live_tags(events)})
    notes = _live_notes(events)
    note = events[max(notes)].get("text") if notes else None
    return Annotations(tags, note if isinstance(note, str) else None)


def _names_of(root: Path, identities: list[str], listing: list[str]) -> dict[str, str]:
    """Identity -> the name whose claim holds it now, for the identities that have one."""
    out: dict[str, str] = {}
    missing = set(identities)
    hints: dict[str, list[str]] = {}
    for file in listing:
        if file.endswith(_HINT):
            hints.setdefault(file.partition(".")[0], []).append(file)
    for identity in identities:  # the hints, checked against the claim
        for hint in hints.get(identity, ()):
            path = root / ANNOTATIONS / hint
            try:
                name = _HINT_CACHE.get(str(path))
                if name is None:
                    name = str(json.loads(path.read_bytes())["name"])
                    if len(_HINT_CACHE) > 100_000:
                        _HINT_CACHE.clear()
                    _HINT_CACHE[str(path)] = name
                held = claims.claim_of(root, name)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if held is not None and held.id == identity:
                out[identity] = name
                missing.discard(identity)
                break
    if missing:  # a stale hint: look through every claim
        for name, held in claims.all_claims(root):
            if held.id in missing:
                out[held.id] = name
    return out
