from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.consumer.settings import ConsumerSettings
from yuqing.paths import project_paths
from yuqing.places import Gazetteer, existing_places_file, load_gazetteer
from yuqing.settings import ElasticsearchSettings, KafkaSettings, cache_home, log_level_named, topic_name_part


class AlertsSettings(BaseSettings):
    """Settings of the alerts worker (env prefix ``YUQING_ALERTS_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_ALERTS_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    # dead-letter cap and acknowledgement wait, shared by every worker (YUQING_CONSUMER_*)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    app_id: str = Field("yuqing-alerts", description="faust app id = consumer group, internal topic prefix")
    # windows
    bucket_seconds: int = Field(300, ge=10, description="window length; must divide an hour")
    grace_seconds: int = Field(120, ge=0, description="how long a window waits for out-of-order posts")
    retention_hours: int = Field(24 * 7, ge=1, description="forget a key after this long without posts")
    max_future_seconds: int = Field(
        300, ge=0, description="trust a post's date at most this far after its arrival")
    idle_close_seconds: int = Field(
        60, ge=0, description="a live stream silent this long closes windows by wall clock; 0: never")
    idle_partition_seconds: int = Field(
        30, ge=1, description="a source partition silent this long stops holding the watermark back")
    session_timeout_s: float = Field(
        30.0, ge=6, description="a crashed worker's partitions move on after this")
    batch_size: int = Field(200, ge=1, description="posts decoded per batch")
    batch_max_wait_s: float = Field(0.2, gt=0, description="flush a partial batch after this")
    changelog_timeout_s: float = Field(
        120.0, gt=0, description="a batch's state not on the broker after this stops the worker")
    places_file: Path = Field(default_factory=lambda: project_paths().config / "places.toml",
                              description="known regions, for posts that carry none (yuqing.places)")
    # issues (the cluster key family): grouped here as the indexers group them (services.alerts.issues)
    es: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    issues_from_index: bool = Field(
        True, description="warm and refresh the issue grouping from the posts index; off: group alone")
    issues_refresh_s: float = Field(2.0, gt=0, description="read the indexers' new posts at most this often")
    issues_retry_s: float = Field(30.0, gt=0, description="an unreachable index is tried again after this")
    issues_timeout_s: float = Field(5.0, gt=0, description="one request to the index, at most")
    # detection and lifecycle
    # -12..+14 are the offsets in use; a day or more crashed the first window's detection at run time
    utc_offset_hours: float = Field(8.0, ge=-12, le=14, description="local time of the day rhythm")
    min_count: float = Field(5.0, ge=1, description="a bucket with fewer posts never alerts")
    resolve_after_seconds: int = Field(1800, ge=1, description="quiet time before an alert resolves")
    realert_after_seconds: int = Field(86_400, ge=1, description="a key alerts again only after this")
    # evidence kept per key and window
    evidence_samples: int = Field(32, ge=5, le=256, description="posts sampled per key and window")
    evidence_terms: int = Field(32, ge=5, le=256, description="keywords counted per key and window")
    # notifications
    webhook_url: str | None = Field(None, description="full URL; for Alertmanager .../api/v2/alerts")
    webhook_format: str = Field("alertmanager", pattern="^(alertmanager|wecom|dingtalk)$")
    webhook_secret: SecretStr | None = Field(None, description="DingTalk robot signing secret")
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(
        12, ge=1, le=20, description="attempts per notification; 12 retry for about 3 minutes")
    webhook_queue_size: int = Field(1000, ge=1, description="notifications waiting; more are dropped")
    search_url: str | None = Field(
        None, description="the search API's public base URL; notifications link to the alert there")
    # metrics
    metrics_port: int = Field(9103, ge=0, le=65535, description="/metrics; 0: not served")
    metrics_max_regions: int = Field(64, ge=1, description="distinct region labels; the rest are 'other'")
    metrics_max_sources: int = Field(32, ge=1, description="distinct source labels; the rest are 'other'")
    state_dir: Path = Field(default_factory=lambda: cache_home() / "state",
                            description="local state (faust table stores), under YUQING_HOME")
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        return log_level_named(value, "YUQING_ALERTS_LOG_LEVEL")

    @field_validator("webhook_url", "search_url")
    @classmethod
    def _web_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Refused at start: otherwise every alert would fail its attempts one by one (a webhook),
        # or carry a link that opens nothing (the search API).
        if value is None or not value.strip():
            return None  # an empty secret value means none, as an absent one does
        parts = urlsplit(value)
        if re.search(r"\s", value) or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{info.field_name} must be an http:// or https:// URL with a host")
        if info.field_name == "search_url" and (parts.query or parts.fragment):
            # the alert's path goes after it: ...?key=x/v1/alerts/<id> opens nothing
            raise ValueError("search_url must be a base URL, without a query or fragment")
        return value

    @field_validator("bucket_seconds")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError("bucket_seconds must divide 3600 (the day rhythm is learnt per hour)")
        return value

    @field_validator("app_id")
    @classmethod
    def _names_topics(cls, value: str) -> str:
        # Faust names the app's own topics after it: another id ended in a Faust traceback
        return topic_name_part(value, "YUQING_ALERTS_APP_ID", empty=False)

    @model_validator(mode="after")
    def _places_file_set_exists(self) -> Self:
        # a file set on purpose must be there; the default (the shipped file) may be absent: no
        # places. (A field validator runs on the default too: settings validate defaults.)
        if "places_file" in self.model_fields_set:
            existing_places_file(self.places_file, "YUQING_ALERTS_PLACES_FILE")
        return self

    def gazetteer(self) -> Gazetteer:
        """The known regions of ``places_file`` (none if the default file does not exist)."""
        return _gazetteer(self.places_file)

    def buckets(self, seconds: int) -> int:
        """A duration as a whole number of buckets (at least one)."""
        return max(1, round(seconds / self.bucket_seconds))


@cache
def _gazetteer(path: Path) -> Gazetteer:
    return load_gazetteer(path)
