from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.ingest.admission import Admission
from yuqing.contracts.limits import DEFAULT_EVENT_MAX_AGE, DEFAULT_EVENT_MAX_LEAD
from yuqing.settings import KafkaSettings, cache_home, log_level_named


def _default_cursor_dir() -> Path:
    return cache_home() / "state" / "cursors"


class IngestSettings(BaseSettings):
    """Settings of the ingest service (env prefix ``YUQING_INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_INGEST_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=0, le=65535)
    poll_metrics_port: int = Field(
        9101, ge=0, le=65535,
        description="/metrics of `yuqing ingest poll` (the pollers without the API); 0: not served")
    sources_path: Path = Path("config/sources.toml")
    max_batch_posts: int = Field(500, ge=1)
    max_body_bytes: int = Field(2_000_000, ge=1_024)
    event_max_age_s: int = Field(
        int(DEFAULT_EVENT_MAX_AGE.total_seconds()), ge=60,
        description="oldest created_at accepted, seconds before arrival (widen for back-fills)")
    event_max_lead_s: int = Field(
        int(DEFAULT_EVENT_MAX_LEAD.total_seconds()), ge=0, le=86_400,
        description="latest created_at accepted, seconds after arrival (clock skew)")
    publish_timeout_s: float = Field(10.0, gt=0)
    wechat_timeout_s: float = Field(
        4.0, gt=0, le=4.5, description="WeChat gives up after 5 s; answer 503 before that")
    wechat_max_clock_skew_s: int = Field(
        300, ge=1, description="a WeChat push's signed timestamp may be this far from server time")
    retry_after_s: int = Field(5, ge=1)
    dedup_window_s: int = Field(3_600, ge=1)
    dedup_max_entries: int = Field(200_000, ge=1)
    rate_limit_per_s: float = Field(
        100.0, ge=0, description="requests per second per source (0: unlimited); sources may override")
    rate_limit_burst: int = Field(200, ge=1)
    producer: Literal["aiokafka", "kafka-python"] = "aiokafka"
    producer_linger_ms: int = Field(5, ge=0, le=1_000)
    producer_batch_bytes: int = Field(262_144, ge=16_384, le=16_777_216)
    poll_forums: bool = Field(True, description="run the forum pollers inside `yuqing ingest serve`")
    cursor_dir: Path = Field(default_factory=_default_cursor_dir)
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        return log_level_named(value, "YUQING_INGEST_LOG_LEVEL")

    def admission(self) -> Admission:
        """The edge's bounds on every post (event-time window, message size)."""
        return Admission(max_age=timedelta(seconds=self.event_max_age_s),
                         max_lead=timedelta(seconds=self.event_max_lead_s))

    @field_validator("cursor_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()
