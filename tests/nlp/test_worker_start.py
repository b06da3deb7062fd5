"""What the NLP worker says when it starts: the model, rules and places it took."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from services.nlp.placeholder import KeywordPlaceholderClassifier
from services.nlp.settings import NlpSettings
from services.nlp.worker import create_app
from yuqing.topics import LogicalTopic


def test_the_worker_names_its_model_rules_and_places_at_start(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    rules = tmp_path / "topics.toml"
    rules.write_text('[[rule]]\nname = "r"\ntopic = "rumor"\ninclude = ["限电通知"]\n', encoding="utf-8")
    places = tmp_path / "places.toml"
    places.write_text('[[regions]]\nname = "柳塘镇"\n\n[[regions]]\nname = "河口镇"\n', encoding="utf-8")
    settings = NlpSettings(classifier="placeholder", rules_path=rules, places_file=places,
                           state_dir=tmp_path / "state", app_id="nlp-start")
    classifier = KeywordPlaceholderClassifier()

    with caplog.at_level(logging.INFO, logger="services.nlp.worker"):
        create_app(settings, classifier)

    (line,) = [r.getMessage() for r in caplog.records if r.name == "services.nlp.worker"]
    raw, enriched = (settings.kafka.topic(t) for t in (LogicalTopic.POSTS_RAW, LogicalTopic.POSTS_ENRICHED))
    assert line == (f"NLP worker nlp-start: {raw} -> {enriched}, model {classifier.version}, "
                    f"1 topic rules ({rules}), 2 regions ({places})")
