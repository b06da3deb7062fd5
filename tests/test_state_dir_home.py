"""The workers keep their local state under ``YUQING_HOME``, like every other cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.alerts.settings import AlertsSettings
from services.nlp.settings import NlpSettings


@pytest.mark.parametrize("settings", [NlpSettings, AlertsSettings])
def test_state_dir_follows_yuqing_home(settings: type[NlpSettings | AlertsSettings],
                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YUQING_HOME", str(tmp_path))
    assert settings().state_dir == tmp_path / "state"
    monkeypatch.setenv(f"{settings.model_config['env_prefix']}STATE_DIR", str(tmp_path / "elsewhere"))
    assert settings().state_dir == tmp_path / "elsewhere"
