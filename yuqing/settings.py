"""Connection settings shared by every service.

Each service has one settings class of its own (``services/<name>/settings.py``)
that embeds these; settings classes are the only code that reads the
environment. Point a service at an existing cluster by setting
``YUQING_KAFKA_BOOTSTRAP_SERVERS`` and ``YUQING_ES_URL``.
"""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from yuqing.topics import LogicalTopic

# A service that exits with this code asks to be restarted (EX_TEMPFAIL): it stopped
# on purpose, without committing, so that its restart reads its input again.
EXIT_RESTART = 75
# A worker that exits with this code stopped, without committing, past its dead-letter
# cap: restarting it would only dead-letter the same messages again, so it waits for
# an operator (EX_DATAERR).
EXIT_DEAD_LETTER_CAP = 65


def reachable(host_port: str, timeout_s: float = 1.0) -> bool:
    """Whether ``host:port`` accepts a TCP connection (an empty host is this machine)."""
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def topic_name_part(value: str, setting: str, *, empty: bool = True) -> str:
    """``value`` if Kafka can name a topic with it (a prefix, a Faust app id, which names the
    app's own topics; an id is not ``empty``); else a ``ValueError`` naming ``setting``."""
    if not empty and not value:
        # Faust ended in "ImproperlyConfigured: App requires an id!", naming no setting
        raise ValueError(f"{setting} is empty: it names the consumer group and the app's own topics")
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,200}", value):
        raise ValueError(f"{setting}={value!r}: a topic name holds ASCII letters, digits, "
                         "'.', '_' and '-' only")
    return value


def log_level_named(value: str, setting: str) -> str:
    """``value`` if logging knows it as a level (any case); else a ``ValueError`` naming
    ``setting``: logging's own "Unknown level: 'VERBOSE'" did not say which setting to fix."""
    if value.upper() not in logging.getLevelNamesMapping():
        raise ValueError(f"{setting}={value!r}: a log level is one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return value


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUQING_KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    # kafka-python took a misspelt protocol for PLAINTEXT: an operator who asked for TLS or SASL
    # got a plain connection, or "Unable to bootstrap" from a listener that expects them
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    topic_prefix: str = Field(
        "", description="prepended to every logical topic name (environments, tests)"
    )
    replication_factor: int = Field(1, ge=1)
    partitions_override: int | None = Field(None, ge=1, description="force partitions (tests)")
    max_message_bytes: int = Field(
        1_000_000, ge=10_000,
        description="the largest message value a service produces; keep it under the broker's "
                    "message.max.bytes (1,048,588 by default) less room for the key and headers",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        # an empty list was "IndexError: Cannot choose from an empty sequence", a port that is no
        # number "invalid literal for int()", and kafka:// (Faust's spelling) a broker no worker found
        servers = [server.strip() for server in value.split(",") if server.strip()]
        if not servers or not all(re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+)(:\d{1,5})?", server)
                                  for server in servers):
            raise ValueError(f"YUQING_KAFKA_BOOTSTRAP_SERVERS={value!r}: brokers as host:port, "
                             "separated by commas (no scheme)")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _names_topics(cls, value: str) -> str:
        # another prefix started an ingest that answered every post 503 "message broker
        # unavailable" while it said it was healthy
        return topic_name_part(value, "YUQING_KAFKA_TOPIC_PREFIX")

    def topic(self, logical: LogicalTopic) -> str:
        return f"{self.topic_prefix}{logical.value}"

    def faust_broker(self) -> str:
        """The brokers as faust's broker URL list."""
        return ";".join(f"kafka://{server}" for server in self.servers())

    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def client_options(self) -> dict[str, object]:
        """Security options in kafka-python's vocabulary."""
        options: dict[str, object] = {"security_protocol": self.security_protocol}
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


class ElasticsearchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUQING_ES_", extra="ignore")

    url: str = "http://127.0.0.1:9201"
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    index_prefix: str = Field("yuqing", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    # urllib3 refuses 0 or less on every request: the search API failed its start-up in a
    # traceback, the commands said "Attempted to set connect timeout to 0.0", naming no setting;
    # inf, "ConnectionError(timestamp out of range for platform time_t)"
    request_timeout_s: float = Field(30.0, gt=0, allow_inf_nan=False)


def cache_home() -> Path:
    """Root of downloaded and generated artefacts, outside the clone."""
    import os

    return Path(os.environ.get("YUQING_HOME", "~/.cache/yuqing")).expanduser()
