"""The low-volume benchmark's bookkeeping: its table replaces only its own key of the alerts results."""

from __future__ import annotations

import json
from pathlib import Path

from bench.bench_alerts_lowvolume import refresh_alerts_results


def test_the_lowvolume_table_replaces_only_its_own_key(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"loo": {"realtweets_dev": 88.1, "corpus_dev": 71.0},
                                "lowvolume": [{"old": True}]}))
    refresh_alerts_results([{"baseline_per_bucket": 0.5, "goal_met": True}], path)
    results = json.loads(path.read_text())
    assert results["loo"] == {"realtweets_dev": 88.1, "corpus_dev": 71.0}
    assert results["lowvolume"] == [{"baseline_per_bucket": 0.5, "goal_met": True}]


def test_without_earlier_results_the_table_starts_the_file(tmp_path: Path) -> None:
    path = tmp_path / "results" / "alerts.json"
    refresh_alerts_results([], path)
    assert json.loads(path.read_text()) == {"lowvolume": []}
