"""Logging and the Prometheus endpoint, shared by every service."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.exposition import ThreadingWSGIServer


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


def serve_metrics(port: int, registry: CollectorRegistry, *, ready: Callable[[], bool] | None = None) -> None:
    """Expose ``registry`` on /metrics for a worker that has no HTTP server of its own (port 0: none);
    with ``ready``, also /readyz: 200 while it answers true, else 503 (a readiness probe's).

    A port another process holds is an OSError naming the port: the worker's own line,
    'Address already in use', did not say which of its settings to change.
    """
    if port <= 0:
        return
    try:
        if ready is None:
            start_http_server(port, addr="0.0.0.0", registry=registry)
        else:
            server = make_server("0.0.0.0", port, _with_readiness(make_wsgi_app(registry), ready),
                                 ThreadingWSGIServer, handler_class=_Quiet)
            threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    except OSError as error:
        raise OSError(error.errno, error.strerror, f"metrics port {port}") from error


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not logged."""


def _with_readiness(metrics_app: WSGIApplication, ready: Callable[[], bool]) -> WSGIApplication:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            return metrics_app(environ, start_response)
        answer = ready()
        start_response("200 OK" if answer else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8")])
        return [b"ready\n" if answer else b"not ready\n"]

    return app
