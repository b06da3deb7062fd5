from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.settings import ElasticsearchSettings, KafkaSettings


class SearchSettings(BaseSettings):
    """Settings of the indexer and the search API (env prefix ``YUQING_SEARCH_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_SEARCH_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    indexer_group_id: str = "yuqing-search-indexer"
    bulk_max_docs: int = Field(500, ge=1)
    bulk_max_wait_s: float = Field(1.0, gt=0)
    bulk_max_retries: int = Field(8, ge=0)
    refresh_interval: str = "1s"
    indexer_metrics_port: int = 9104
    host: str = "127.0.0.1"
    port: int = 8003
    page_size_max: int = Field(100, ge=1, le=1000)
    log_level: str = "INFO"
