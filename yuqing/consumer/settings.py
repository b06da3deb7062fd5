"""The consumer settings every worker reads (env prefix ``YUQING_CONSUMER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.consumer.dlq import DlqLimit


class ConsumerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUQING_CONSUMER_", extra="ignore")

    dlq_max_invalid_ratio: float = Field(0.5, gt=0, le=1,
                                         description="stop past this share of invalid messages")
    dlq_max_consecutive: int = Field(20, ge=0, description="stop past this many invalid in a row")
    dlq_window: int = Field(200, ge=1, description="messages the invalid ratio is judged over")
    # inf (a "no timeout" an operator may write) overflowed the wait on the first ack not yet in:
    # the indexer stopped uncommitted at its first dead letter, and again after each restart
    ack_timeout_s: float = Field(30.0, gt=0, allow_inf_nan=False,
                                 description="wait this long for the broker's acks")

    def dlq_limit(self) -> DlqLimit:
        return DlqLimit(max_invalid_ratio=self.dlq_max_invalid_ratio,
                        max_consecutive_count=self.dlq_max_consecutive, window=self.dlq_window)
