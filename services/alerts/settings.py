from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.settings import KafkaSettings


class AlertsSettings(BaseSettings):
    """Settings of the alerts worker (env prefix ``YUQING_ALERTS_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_ALERTS_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    app_id: str = "yuqing-alerts"
    bucket_seconds: int = Field(300, ge=10, description="window length")
    grace_seconds: int = Field(120, ge=0, description="how long a window waits for late posts")
    retention_hours: int = Field(24 * 7, ge=1)
    metrics_port: int = 9103
    webhook_url: str | None = None
    webhook_format: str = Field("alertmanager", pattern="^(alertmanager|wecom|dingtalk)$")
    state_dir: Path = Field(Path("~/.cache/yuqing/state").expanduser(),
                            description="local state (faust table stores)")
    log_level: str = "INFO"
