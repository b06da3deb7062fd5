from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.consumer.settings import ConsumerSettings
from yuqing.paths import project_paths
from yuqing.places import Gazetteer, existing_places_file, load_gazetteer
from yuqing.settings import KafkaSettings, cache_home, log_level_named, topic_name_part


class NlpSettings(BaseSettings):
    """Settings of the NLP worker (env prefix ``YUQING_NLP_``)."""

    model_config = SettingsConfigDict(env_prefix="YUQING_NLP_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    app_id: str = Field("yuqing-nlp", description="faust app id = consumer group")
    classifier: str = Field("model", pattern="^(model|placeholder)$")
    model_dir: Path | None = Field(None, description="a transformers model dir; default: built-in")
    model_variant: str = "default"
    torch_threads: int = Field(2, ge=1, description="intra-op threads of the model (torch or ONNX Runtime)")
    batch_size: int = Field(32, ge=1, le=1024)
    # inf: a partial batch waited to be filled (a post of a quiet topic was never enriched), and the
    # worker then ignored SIGTERM, waiting for that batch
    batch_max_wait_s: float = Field(0.5, gt=0, allow_inf_nan=False,
                                    description="flush a partial batch after this")
    rules_path: Path = Path("config/topics.toml")
    places_file: Path = Field(default_factory=lambda: project_paths().config / "places.toml",
                              description="known regions, inferred for posts that carry none (yuqing.places)")
    metrics_port: int = Field(9102, ge=0, le=65535, description="/metrics; 0: not served")
    state_dir: Path = Field(default_factory=lambda: cache_home() / "state",
                            description="local state (faust table stores), under YUQING_HOME")
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _a_log_level(cls, value: str) -> str:
        return log_level_named(value, "YUQING_NLP_LOG_LEVEL")

    @field_validator("app_id")
    @classmethod
    def _names_topics(cls, value: str) -> str:
        # Faust names the app's own topics after it: another id ended in a Faust traceback
        return topic_name_part(value, "YUQING_NLP_APP_ID", empty=False)

    @model_validator(mode="after")
    def _places_file_set_exists(self) -> Self:
        # a file set on purpose must be there; the default (the shipped file) may be absent: no
        # places. (A field validator runs on the default too: settings validate defaults.)
        if "places_file" in self.model_fields_set:
            existing_places_file(self.places_file, "YUQING_NLP_PLACES_FILE")
        return self

    def gazetteer(self) -> Gazetteer:
        """The known regions of ``places_file`` (none if the default file does not exist)."""
        return load_gazetteer(self.places_file)
