"""Versioned model artifacts with an atomically switched ``active`` pointer.

Layout under ``root``::

    root/
      versions/
        v0001/                 one directory per saved model, never modified after saving
          model.pkl            the fitted Recommender (Recommender.save)
          vocab.json           user and item ids in index order (to map external ids)
          metadata.json        name, class, params, metrics, dataset fingerprint, created time
        v0002/ ...
      active.json              {"version": "v0002", "history": ["v0001"]}

A version is written into a hidden temporary directory first and renamed into place, so a
reader never sees half an artifact; two writers racing for the same number simply retry with
the next one. ``active.json`` is replaced with ``os.replace`` (atomic on POSIX), so a serving
process reading it sees either the old or the new version, never a mix. ``rollback`` goes back
to the version that was active before the current one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from limelight.data.vocab import IdVocab
from limelight.errors import ArtifactError

if TYPE_CHECKING:
    from limelight.data.dataset import Dataset
    from limelight.models.base import Recommender

_VERSION = re.compile(r"^v(\d{4,})$")
MODEL_FILE = "model.pkl"
VOCAB_FILE = "vocab.json"
METADATA_FILE = "metadata.json"
ACTIVE_FILE = "active.json"


@dataclass
class Artifact:
    """A loaded model version: the model, the vocabularies it was fitted with, its metadata."""

    version: str
    model: Recommender
    users: IdVocab
    items: IdVocab
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def dataset_fingerprint(dataset: Dataset) -> str:
    """A short content hash of a dataset's interaction matrix and vocabularies."""
    h = hashlib.sha256()
    m = dataset.interactions.tocsr()
    for arr in (m.indptr, m.indices, m.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update("\x1f".join(dataset.users.to_list()).encode())
    h.update("\x1e".join(dataset.items.to_list()).encode())
    return h.hexdigest()[:16]


class ArtifactStore:
    """Versioned model artifacts in a directory.

    Parameters
    ----------
    root
        Directory holding the versions (created when missing).

    Example
    -------
    >>> store = ArtifactStore("artifacts")                      # doctest: +SKIP
    >>> v = store.save(model, "ease", dataset=train, metadata={"metrics": {"ndcg@10": .2}})
    >>> store.activate(v); store.load().model                   # doctest: +SKIP
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    # -- writing ----------------------------------------------------------------------------
    def save(self, model: Recommender, name: str, metadata: dict[str, Any] | None = None, *,
             dataset: Dataset | None = None, users: IdVocab | None = None,
             items: IdVocab | None = None, activate: bool = False) -> str:
        """Save a fitted ``model`` as a new version; return the version string (``v0001``...).

        Parameters
        ----------
        model
            A fitted recommender.
        name
            The model's registry name (e.g. ``"ease"``).
        metadata
            Extra JSON-serialisable entries (e.g. ``metrics``, ``protocol``); ``params`` are
            taken from the model unless given.
        dataset
            The training dataset: its vocabularies are saved and its fingerprint recorded.
            Alternatively pass ``users`` and ``items`` vocabularies directly.
        activate
            Make the new version the active one.
        """
        model.check_fitted()
        if dataset is not None:
            users, items = dataset.users, dataset.items
        if users is None or items is None:
            raise ArtifactError("an artifact needs the vocabularies: pass dataset= or "
                                "users= and items=")
        meta: dict[str, Any] = {
            "name": name,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "params": _jsonable(model.get_params()),
            "metrics": {},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "n_users": len(users),
            "n_items": len(items),
        }
        if dataset is not None:
            meta["dataset_fingerprint"] = dataset_fingerprint(dataset)
            meta["n_interactions"] = int(dataset.interactions.nnz)
        meta.update(_jsonable(metadata or {}))
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.versions_dir))
        try:
            model.save(tmp / MODEL_FILE)
            (tmp / VOCAB_FILE).write_text(json.dumps(
                {"users": users.to_list(), "items": items.to_list()}))
            version = self._claim(tmp, meta)
        except BaseException:
            _remove_tree(tmp)
            raise
        if activate:
            self.activate(version)
        return version

    def _claim(self, tmp: Path, meta: dict[str, Any]) -> str:
        """Rename ``tmp`` to the next free version directory (retrying on a race)."""
        number = self._last_number() + 1
        for _ in range(1000):
            version = f"v{number:04d}"
            meta["version"] = version
            (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2, default=str))
            try:
                os.rename(tmp, self.versions_dir / version)  # fails if the target exists
                return version
            except OSError:
                number += 1
        raise ArtifactError(f"cannot allocate a version under {self.versions_dir}")

    def _last_number(self) -> int:
        numbers = [int(m.group(1)) for p in self._version_dirs()
                   if (m := _VERSION.match(p.name))]
        return max(numbers, default=0)

    def _version_dirs(self) -> list[Path]:
        if not self.versions_dir.is_dir():
            return []
        return sorted((p for p in self.versions_dir.iterdir()
                       if p.is_dir() and _VERSION.match(p.name)),
                      key=lambda p: int(p.name[1:]))

    # -- reading ----------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Metadata of every version, oldest first, with ``active`` True for the active one."""
        active = self.active_version()
        out = []
        for path in self._version_dirs():
            meta = self._metadata(path)
            meta["active"] = path.name == active
            out.append(meta)
        return out

    def metadata(self, version: str) -> dict[str, Any]:
        """The metadata of ``version``."""
        return self._metadata(self._path(version))

    def load(self, version: str | None = None) -> Artifact:
        """Load ``version`` (the active one when None) with its vocabularies."""
        from limelight.models.base import Recommender

        if version is None:
            version = self.active_version()
            if version is None:
                raise ArtifactError(f"no active model in {self.root}: train one with "
                                    "`limelight train --activate` or run `limelight models "
                                    "activate VERSION`")
        path = self._path(version)
        model = Recommender.load(path / MODEL_FILE)
        try:
            vocab = json.loads((path / VOCAB_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"artifact {version} has no readable vocabulary: {exc}") from exc
        return Artifact(version=version, model=model, users=IdVocab(vocab["users"]),
                        items=IdVocab(vocab["items"]), metadata=self._metadata(path), path=path)

    def _path(self, version: str) -> Path:
        if not _VERSION.match(str(version)):
            raise ArtifactError(f"{version!r} is not a version (expected e.g. v0001)")
        path = self.versions_dir / version
        if not path.is_dir():
            raise ArtifactError(f"no artifact version {version} in {self.root}")
        return path

    @staticmethod
    def _metadata(path: Path) -> dict[str, Any]:
        try:
            return json.loads((path / METADATA_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"artifact {path.name} has no readable metadata: {exc}") from exc

    # -- the active pointer -----------------------------------------------------------------
    def _pointer(self) -> dict[str, Any]:
        path = self.root / ACTIVE_FILE
        if not path.is_file():
            return {"version": None, "history": []}
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise ArtifactError(f"{path} is corrupt: {exc}") from exc

    def _write_pointer(self, pointer: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".active-", dir=self.root)
        with os.fdopen(fd, "w") as fh:
            json.dump(pointer, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / ACTIVE_FILE)

    def active_version(self) -> str | None:
        """The active version, or None when none was activated."""
        return self._pointer().get("version")

    def activate(self, version: str) -> str:
        """Make ``version`` the active one (the previous one is remembered for rollback)."""
        self._path(version)  # must exist
        pointer = self._pointer()
        current = pointer.get("version")
        if current == version:
            return version
        history = list(pointer.get("history", []))
        if current is not None:
            history.append(current)
        self._write_pointer({"version": version, "history": history,
                             "updated": datetime.now(UTC).isoformat(timespec="seconds")})
        return version

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one; return it."""
        pointer = self._pointer()
        history = list(pointer.get("history", []))
        while history:
            previous = history.pop()
            if (self.versions_dir / previous).is_dir():
                self._write_pointer({"version": previous, "history": history,
                                     "updated": datetime.now(UTC).isoformat(timespec="seconds")})
                return previous
        raise ArtifactError("nothing to roll back to: no earlier active version")


def _jsonable(value: Any) -> Any:
    """Parameters and metrics as plain JSON types (numpy scalars, tuples, paths...)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
