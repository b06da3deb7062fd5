"""Fixtures of the monitoring tests (the helpers live in monitoring_support.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from monitoring_support import (
    KAFKA_EXPORTER_METRICS,
    METRIC_MODULES,
    PROMETHEUS_METRICS,
    build_tool,
    exposed_names,
    recorded_names,
)
from prometheus_client.metrics import MetricWrapperBase


@pytest.fixture(scope="session")
def promtool() -> Path:
    return build_tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> Path:
    return build_tool("amtool")


@pytest.fixture(scope="session")
def service_metrics() -> frozenset[str]:
    """Every series name the Yuqing services expose, from their metrics modules."""
    names: set[str] = set()
    for module_name in METRIC_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                names |= exposed_names(value)
    return frozenset(names)


@pytest.fixture(scope="session")
def known_series(service_metrics: frozenset[str]) -> frozenset[str]:
    return service_metrics | KAFKA_EXPORTER_METRICS | PROMETHEUS_METRICS | recorded_names()
