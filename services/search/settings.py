from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.search.mappings import check_retention_months
from yuqing.consumer.settings import ConsumerSettings
from yuqing.paths import project_paths
from yuqing.places import Gazetteer, existing_places_file, load_gazetteer
from yuqing.settings import ElasticsearchSettings, KafkaSettings, log_level_named


class SearchSettings(BaseSettings):
    """Settings of the indexer and the search API (env prefix ``YUQING_SEARCH_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_SEARCH_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)

    # indexer
    indexer_group_id: str = "yuqing-search-indexer"
    bulk_max_docs: int = Field(500, ge=1)
    # inf ended the indexer's first poll in "OverflowError: cannot convert float infinity to integer"
    bulk_max_wait_s: float = Field(1.0, gt=0, allow_inf_nan=False)
    # a batch is built and written in slices of this many documents, the next slice built while
    # Elasticsearch indexes the one before (bulk.PipelinedWriter)
    bulk_slice_docs: int = Field(100, ge=1)
    # 0 = keep retrying 429/5xx/connection errors: an Elasticsearch outage pauses the indexer
    # (offsets stay uncommitted) instead of stopping it.
    bulk_max_retries: int = Field(0, ge=0)
    refresh_interval: str = "1s"
    indexer_metrics_port: int = Field(9104, ge=0, le=65535, description="/metrics; 0: not served")
    retention_months: int = Field(13, description="monthly post indices kept by `retention` (13 or more)")

    # issues (near-duplicate grouping at index time; see grouping.py)

    # API
    host: str = "127.0.0.1"
    port: int = Field(8003, ge=0, le=65535)
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        return log_level_named(value, "YUQING_SEARCH_LOG_LEVEL")
    api_keys_path: Path | None = Field(None, description="TOML file of API keys (sha256 hashes)")
    jwt_secret: SecretStr | None = Field(None, description="HS256 secret; enables bearer tokens")
    jwt_audience: str = "yuqing-search"
    anonymous_role: Literal["viewer", "responder"] | None = Field(
        None, description="development only: the role of requests without credentials")
    key_cache_s: float = Field(30.0, ge=0, description="how long a key looked up in ES is trusted")
    rate_limit_per_minute: int = Field(600, ge=0, description="per key; 0 disables")
    places_file: Path = Field(default_factory=lambda: project_paths().config / "places.toml",
                              description="known regions: a region filter may name one by its short "
                                          "form or in traditional characters (yuqing.places)")

    @field_validator("indexer_group_id")
    @classmethod
    def _a_group(cls, value: str) -> str:
        # Kafka refuses an empty group id: the indexer warmed its issues, then ended in
        # "error: Kafka: [Error 24] InvalidGroupIdError", naming no setting
        if not value:
            raise ValueError("YUQING_SEARCH_INDEXER_GROUP_ID is empty: it names the indexers' consumer group")
        return value

    @field_validator("retention_months")
    @classmethod
    def _keeps_what_the_edge_admits(cls, value: int) -> int:
        return check_retention_months(value, "YUQING_SEARCH_RETENTION_MONTHS")

    @field_validator("jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("YUQING_SEARCH_JWT_SECRET must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _places_file_set_exists(self) -> Self:
        # a file set on purpose must be there; the default (the shipped file) may be absent
        if "places_file" in self.model_fields_set:
            existing_places_file(self.places_file, "YUQING_SEARCH_PLACES_FILE")
        return self

    def gazetteer(self) -> Gazetteer:
        """The known regions of ``places_file`` (none if the default file does not exist)."""
        return load_gazetteer(self.places_file)
