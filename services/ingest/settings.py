from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.settings import KafkaSettings


class IngestSettings(BaseSettings):
    """Settings of the ingest API (env prefix ``YUQING_INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_INGEST_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = 8001
    sources_path: Path = Path("config/sources.toml")
    max_batch_posts: int = Field(500, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1_024)
    publish_timeout_s: float = Field(10.0, gt=0)
    retry_after_s: int = 5
    dedup_window_s: int = 3_600
    log_level: str = "INFO"
