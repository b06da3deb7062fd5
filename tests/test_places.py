"""Place names in a post's text and the known region it names (yuqing.places)."""

from __future__ import annotations

from pathlib import Path

import pytest

from yuqing.paths import project_paths
from yuqing.places import Gazetteer, load_gazetteer, place_names, short_form, towns

DEMO = Gazetteer.of(["城关镇", "柳塘镇", "石门镇", "桃花镇", "青山乡", "河口镇"],
                    {"河口镇": ["滨河小区"], "柳塘镇": ["下坝村"]})

REGION_OF = [
    # a short form where a place stands
    ("河口停电+1", "河口镇"),
    ("河口这边突然停电了，啥情况？", "河口镇"),
    ("听说是河口那边变压器炸了，着火了", "河口镇"),
    ("谢天谢地河口来电了！师傅们辛苦", "河口镇"),
    ("今晚河口停电大家只能瞎猜", "河口镇"),
    ("我在城关", "城关镇"),
    ("我们青山，又停电了", "青山乡"),
    # the full name, and a place listed under a region
    ("河口镇新街整条街都没电了", "河口镇"),
    ("我家也停了，滨河小区，这都第二次了", "河口镇"),
    ("下坝村停电了", "柳塘镇"),
    # a short form inside another word is no place
    ("桃花开了，真好看", None),
    ("青山绿水就是金山银山", None),
    ("家门口的石门槛坏了", None),
    ("开满了桃花。", None),
    # two places, or none
    ("城关镇和河口镇都停电了", None),
    ("河口停电，城关那边也没电", None),
    ("停电了！！冰箱里刚买的肉啊", None),
    ("有人吗？", None),
    # a township that is not a known region
    ("白沙乡停电了", None),
    # the region named twice is still one region
    ("河口镇停电了，河口那边什么时候来电", "河口镇"),
]


@pytest.mark.parametrize(("text", "region"), REGION_OF)
def test_the_one_known_region_a_text_names(text: str, region: str | None) -> None:
    assert DEMO.region_of(text) == region


def test_every_region_a_text_names() -> None:
    assert DEMO.regions_named("城关镇和河口镇都停电了") == {"城关镇", "河口镇"}
    assert DEMO.regions_named("桃花开了") == frozenset()


def test_place_names_with_their_suffix() -> None:
    assert place_names("河口镇滨河小区3栋停电，新街村也是") == {"河口镇", "滨河小区", "新街村"}
    assert place_names("我们村整条街都黑了") == frozenset()
    assert towns("河口镇和青山乡") == {"河口", "青山"}
    assert short_form("河口镇") == "河口" and short_form("城关") is None


def test_a_place_listed_under_two_regions_names_neither() -> None:
    gazetteer = Gazetteer.of(["甲山镇", "乙水镇"], {"甲山镇": ["新街"], "乙水镇": ["新街", "东桥"]})
    assert gazetteer.region_of("新街停电了") is None and gazetteer.region_of("东桥停电了") == "乙水镇"


def test_the_configured_gazetteer_holds_the_demo_townships(tmp_path: Path) -> None:
    configured = load_gazetteer(project_paths().config / "places.toml")
    assert {"河口镇", "城关镇", "青山乡"} <= configured.regions
    assert configured.region_of("河口停电+1") == "河口镇"
    assert load_gazetteer(tmp_path / "missing.toml").regions == frozenset()
    broken = tmp_path / "broken.toml"
    broken.write_text('[[regions]]\nplaces = ["x"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="needs a name"):
        load_gazetteer(broken)


def test_one_definition_of_place_names_for_grouping_and_regions() -> None:
    # issue grouping reads places through yuqing.places: the same names either way
    from services.search.issue_text import places

    text = "河口镇新街又停电了，上坝村也是，三组的马路边线路掉了"
    assert place_names(text) == {"河口镇", "新街", "上坝村"}  # not 三组 (a number), 马路, 线路
    assert places(text) == place_names(text) - {"河口镇"}


@pytest.mark.parametrize(("body", "message"), [
    # a bare string was read as its characters: every post holding 村 was placed in 柳塘镇
    ('[[regions]]\nname = "柳塘镇"\nplaces = "下坝村"\n',
     r"places\.toml: region '柳塘镇': places must be a list"),
    ('[[regions]\nname = "柳塘镇"\n', r"places\.toml: not a TOML file"),
    # these were read as no regions, or as a region without its places
    ('[[region]]\nname = "柳塘镇"\n', r"places\.toml: unknown region; each region is a \[\[regions\]\]"),
    ('[regions]\nname = "柳塘镇"\n', r"places\.toml: each region is a \[\[regions\]\] table"),
    ('[[regions]]\nname = "柳塘镇"\nplace = ["下坝村"]\n', r"region '柳塘镇': unknown place; an entry"),
    ('[[regions]]\nname = 3\n', r"places\.toml: region 3: name must be"),
])
def test_a_places_file_that_cannot_be_used_names_itself(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "places.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_gazetteer(path)


def test_the_alerts_worker_reads_its_places_file_at_start(tmp_path: Path) -> None:
    # read at the first post, a broken file failed every post into the dead letters up to the cap
    from services.alerts.settings import AlertsSettings
    from services.alerts.worker import create_app

    path = tmp_path / "places.toml"
    path.write_text('[[regions]]\nname = "柳塘镇"\nplaces = "下坝村"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="places must be a list"):
        create_app(AlertsSettings(places_file=path, state_dir=tmp_path))


@pytest.mark.parametrize(("service", "settings_class"),
                         [("nlp", "NlpSettings"), ("alerts", "AlertsSettings")])
def test_a_places_file_set_but_missing_stops_the_worker_in_one_line(
        tmp_path: Path, service: str, settings_class: str) -> None:
    # the worker started with no places: every post without a region lost its township
    from tests.test_cli import _yuqing

    missing = tmp_path / "plcaes.toml"
    setting = f"YUQING_{service.upper()}_PLACES_FILE"

    done = _yuqing(service, "worker", env={setting: str(missing), "YUQING_HOME": str(tmp_path)})

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {settings_class}: (root): Value error, {setting}={missing}: no such places file"]


def test_the_default_places_file_is_read_and_a_file_set_on_purpose_must_be_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.alerts.settings import AlertsSettings
    from services.nlp.settings import NlpSettings
    from services.search.settings import SearchSettings

    path = tmp_path / "places.toml"
    path.write_text('[[regions]]\nname = "柳塘镇"\n', encoding="utf-8")
    for settings_class, setting in ((NlpSettings, "YUQING_NLP_PLACES_FILE"),
                                    (AlertsSettings, "YUQING_ALERTS_PLACES_FILE"),
                                    (SearchSettings, "YUQING_SEARCH_PLACES_FILE")):
        assert settings_class().gazetteer().region_of("柳塘镇又停电了") == "柳塘镇"  # config/places.toml
        monkeypatch.setenv(setting, str(path))
        assert settings_class().gazetteer().region_of("柳塘镇又停电了") == "柳塘镇"
        monkeypatch.setenv(setting, str(tmp_path))
        with pytest.raises(ValueError, match=f"{setting}={tmp_path}: no such places file"):
            settings_class()


def test_the_default_places_file_missing_means_no_places(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # only a file set on purpose must be there: a configuration folder without places.toml
    # starts the workers with no places, as before
    from services.alerts.settings import AlertsSettings
    from services.nlp.settings import NlpSettings
    from services.search.settings import SearchSettings
    from yuqing.paths import project_paths

    monkeypatch.setenv("YUQING_CONFIG_DIR", str(tmp_path))
    project_paths.cache_clear()
    try:
        for settings_class in (NlpSettings, AlertsSettings, SearchSettings):
            settings = settings_class()
            assert settings.places_file == tmp_path / "places.toml"
            assert settings.gazetteer().region_of("柳塘镇又停电了") is None
    finally:
        project_paths.cache_clear()


@pytest.mark.timeout(30)
def test_a_text_saying_a_short_form_over_and_over_is_read_through_once() -> None:
    # each match of a short form copied the text before and after it: 100,000 characters of
    # 河口 took 1.1 s, four times as long for twice the text: this one took minutes
    said = "河口的" * 400_000

    assert DEMO.region_of(said) is None
    assert DEMO.region_of(f"{said}，河口") == "河口镇"


def test_a_filter_names_a_known_region_by_its_short_form_or_in_traditional_characters() -> None:
    # a township's responder types 河口 or pastes 河口鎮: read as a region of its own, the search
    # found nothing in a township where posts were arriving
    places = Gazetteer.of([*DEMO.regions, "河口乡", "白沙镇"])
    assert [DEMO.region_called(n) for n in ("河口", "河口鎮", "河口镇", "青山", "青山鄉")] == [
        "河口镇", "河口镇", "河口镇", "青山乡", "青山乡"]
    assert places.region_called("河口") == "河口"  # 河口镇 or 河口乡: left as typed
    assert places.region_called("白沙") == "白沙镇"
    assert [DEMO.region_called(n) for n in ("城关", "新街村", "河")] == ["城关镇", "新街村", "河"]
    assert Gazetteer().region_called("河口") == "河口"
