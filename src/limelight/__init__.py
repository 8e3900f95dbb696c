"""Limelight: personalized recommendation and precision marketing in one library.

The data flows one way: sources -> ingest -> EventStore -> (profiles, segments) and
(Dataset -> models -> ArtifactStore) -> serving pipeline -> API, with marketing on top.
"""

__version__ = "0.1.0"
