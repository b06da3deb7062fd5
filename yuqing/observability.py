"""Logging and the Prometheus endpoint, shared by every service."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    start_http_server,
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "topic", "partition", "offset", "service"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "aiokafka", "elastic_transport", "urllib3", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def service_registry() -> CollectorRegistry:
    """A registry for one service's metrics (its ``metrics.py``), with the process's and Python's.

    Each endpoint serves its service's registry, not the default one: a module of another
    service imported for its logic declares its metrics there (the alerts worker's issue
    grouping is the search's), and the endpoint exported every one of them at 0.
    """
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def serve_metrics(port: int, registry: CollectorRegistry) -> None:
    """Expose ``registry`` on /metrics for a worker that has no HTTP server of its own (port 0: none).

    A port another process holds is an OSError naming the port: the worker's own line,
    'Address already in use', did not say which of its settings to change.
    """
    if port > 0:
        try:
            start_http_server(port, addr="0.0.0.0", registry=registry)
        except OSError as error:
            raise OSError(error.errno, error.strerror, f"metrics port {port}") from error
