"""Typed settings.

Sources, highest priority first: keyword arguments, environment variables with the prefix
``LIMELIGHT_`` (nested keys joined by ``__``, e.g. ``LIMELIGHT_SERVE__PORT=8100``), the TOML file
named by ``LIMELIGHT_CONFIG`` or ``./limelight.toml`` when present, then the defaults below.
``limelight.example.toml`` at the repository root lists every key with its default.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class IngestConfig(BaseModel):
    chunk_rows: int = Field(500_000, ge=1, description="rows read per chunk when streaming files")
    pseudonymize: bool = Field(False, description="replace user ids by a keyed HMAC-SHA256")
    pseudonym_secret: str = Field("", description="HMAC key; required when pseudonymize is on")
    max_future_seconds: int = Field(
        86_400, ge=0, description="events stamped further than this in the future are rejected"
    )
    min_timestamp: str = Field("1990-01-01", description="events before this date are rejected")


class DatasetConfig(BaseModel):
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "purchase": 5.0,
            "add_to_cart": 3.0,
            "like": 2.0,
            "share": 2.0,
            "review": 2.0,
            "click": 1.0,
            "view": 0.5,
            "rating": 1.0,  # multiplied by the rating value
            "not_interested": -2.0,
        },
        description="weight of each event type in the interaction matrix",
    )
    half_life_days: float | None = Field(None, description="time decay of interactions")
    min_user_interactions: int = Field(1, ge=1)
    min_item_interactions: int = Field(1, ge=1)


class ServeConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    n: int = Field(10, ge=1, description="default length of a recommendation list")
    max_n: int = Field(1000, ge=1, description="largest n a request may ask for")
    max_batch: int = Field(10_000, ge=1, description="largest event batch POST /events accepts")
    api_keys: dict[str, list[str]] = Field(
        default_factory=dict,
        description="sha256 hex digest of an API key -> scopes (read, write, admin); "
        "empty means auth is off",
    )
    diversity: float = Field(0.0, ge=0.0, le=1.0, description="default MMR lambda (0 = off)")
    boost_items: list[str] = Field(default_factory=list)
    bury_items: list[str] = Field(default_factory=list)
    candidate_cache_users: int = Field(
        20_000, ge=0, description="users whose best candidates are kept per model version, "
                                  "warmed at load (0 = off)")
    candidate_cache_min_items: int = Field(
        10_000, ge=0, description="smaller catalogues are scored in full on every request "
                                  "(as cheap as filtering cached candidates)")


class MarketingConfig(BaseModel):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "limelight@localhost"
    webhook_secret: str = ""
    frequency_cap_per_week: int = Field(3, ge=0)
    quiet_hours: tuple[int, int] = (21, 8)


class Settings(BaseSettings):
    """All of Limelight's settings; see ``limelight.example.toml`` for every default."""

    model_config = SettingsConfigDict(
        env_prefix="LIMELIGHT_", env_nested_delimiter="__", extra="ignore"
    )

    store_url: str = Field("duckdb:///./limelight.duckdb", description="event store URL")
    artifacts_dir: Path = Field(Path("./artifacts"), description="versioned model artifacts")
    random_state: int = 42
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    marketing: MarketingConfig = Field(default_factory=MarketingConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("LIMELIGHT_CONFIG", "limelight.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
