"""Named errors. Each tells the user what went wrong and what to fix."""

from __future__ import annotations


class LimelightError(Exception):
    """Base class of every error Limelight raises on purpose."""


class ConfigError(LimelightError):
    """Settings are missing or invalid."""


class SchemaError(LimelightError):
    """Input does not have the columns or types the data model needs."""


class IngestError(LimelightError):
    """A source cannot be read at all (missing file, unreadable format)."""


class StoreError(LimelightError):
    """The store cannot be opened or a write failed."""


class UnknownIdError(LimelightError, KeyError):
    """A user or item id is not known to the store, vocabulary or model."""

    def __init__(self, kind: str, ids: object) -> None:
        self.kind = kind
        self.ids = ids
        super().__init__(f"unknown {kind} id(s): {ids!r}")

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


class NotFittedError(LimelightError, RuntimeError):
    """A model or pipeline was used before `fit` was called."""


class ArtifactError(LimelightError):
    """A saved model artifact is missing, corrupt or of the wrong kind."""
