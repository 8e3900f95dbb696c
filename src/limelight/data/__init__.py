"""Data model, ingest, id vocabularies and training datasets."""
