from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.ingest.registry import (
    AppSourceConfig,
    ForumSourceConfig,
    InvalidApiKeyError,
    MissingSecretError,
    RegistryError,
    SourceDisabledError,
    UnknownSourceError,
    load_registry,
    parse_registry,
    pseudonymize,
)
from yuqing.contracts import Channel

EXAMPLE = Path(__file__).parents[2] / "config" / "sources.example.toml"

EXAMPLE_ENV = {
    "YUQING_SECRET_APP_MAIN": "app-main-hmac-secret-0123456789abcdef",
    "YUQING_WECHAT_SERVICE_TOKEN": "QDG6eK",
    "YUQING_WECHAT_SERVICE_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "YUQING_WECHAT_SERVICE_SALT": "wechat-salt-0123456789",
    "YUQING_FORUM_SALT": "forum-salt-0123456789",
    "YUQING_API_KEY_CRM_95598": "crm-key-0123456789abcdef0123456789abcdef",
}

APP_SOURCE = """
[[sources]]
id = "app-main"
channel = "app"
owner = "客户服务中心"
hmac_secret_env = "YUQING_SECRET_APP_MAIN"
"""


def test_example_registry_loads_every_channel() -> None:
    registry = load_registry(EXAMPLE, EXAMPLE_ENV)

    assert len(registry) == 6
    assert {s.channel for s in registry.sources()} == set(Channel)
    app = registry.get("app-main")
    assert isinstance(app.config, AppSourceConfig)
    assert app.secret("hmac_secret") == EXAMPLE_ENV["YUQING_SECRET_APP_MAIN"]
    assert app.optional_secret("hmac_secret_previous") is None
    assert app.config.region == "城关镇"
    forum = registry.get("forum-intranet")
    assert isinstance(forum.config, ForumSourceConfig)
    assert forum.config.kind == "discourse"
    assert [s.id for s in registry.sources(Channel.FORUM)] == ["forum-intranet", "forum-notices"]


def test_missing_secret_names_the_environment_variable() -> None:
    env = {k: v for k, v in EXAMPLE_ENV.items() if k != "YUQING_FORUM_SALT"}

    with pytest.raises(MissingSecretError) as caught:
        load_registry(EXAMPLE, env)

    assert caught.value.env_var == "YUQING_FORUM_SALT"
    assert "YUQING_FORUM_SALT" in str(caught.value)
    assert "forum-intranet" in str(caught.value)


def test_empty_secret_counts_as_missing() -> None:
    with pytest.raises(MissingSecretError):
        parse_registry(APP_SOURCE, {"YUQING_SECRET_APP_MAIN": ""})


def test_disabled_source_needs_no_secret_and_is_refused() -> None:
    registry = load_registry(EXAMPLE, EXAMPLE_ENV)  # YUQING_API_KEY_LEGACY_SMS is unset

    with pytest.raises(SourceDisabledError):
        registry.get("legacy-sms")
    assert "legacy-sms" in registry
    assert "legacy-sms" not in [s.id for s in registry.sources()]
    assert "legacy-sms" in [s.id for s in registry.sources(include_disabled=True)]


def test_unknown_source_is_refused() -> None:
    registry = load_registry(EXAMPLE, EXAMPLE_ENV)

    with pytest.raises(UnknownSourceError):
        registry.get("no-such-source")


def test_secret_value_in_the_file_is_refused_with_a_hint() -> None:
    text = APP_SOURCE.replace('hmac_secret_env = "YUQING_SECRET_APP_MAIN"',
                              'hmac_secret_env = "YUQING_SECRET_APP_MAIN"\nhmac_secret = "abc"')

    with pytest.raises(RegistryError) as caught:
        parse_registry(text, EXAMPLE_ENV)

    message = str(caught.value)
    assert "sources[0] (id='app-main').hmac_secret" in message
    assert "hmac_secret_env" in message


@pytest.mark.parametrize(("toml", "expected"), [
    (APP_SOURCE.replace('channel = "app"', 'channel = "fax"'), "does not match any of the expected"),
    (APP_SOURCE.replace('"YUQING_SECRET_APP_MAIN"', '"lower_case"'), "hmac_secret_env"),
    (APP_SOURCE.replace('id = "app-main"', 'id = "App Main"'), ".id"),
    (APP_SOURCE + APP_SOURCE, "listed twice"),
    ("[[sources]]\nid = 'f1'\nchannel = 'forum'\nowner = 'x'\nkind = 'discourse'\n"
     "author_salt_env = 'SALT_ENV'", "needs base_url"),
    ("[[sources]]\nid = 'f1'\nchannel = 'forum'\nowner = 'x'\nkind = 'rss'\n"
     "feed_url = 'ftp://x'\nauthor_salt_env = 'SALT_ENV'", "feed_url"),
    ("sources = [", "not valid TOML"),
])
def test_invalid_registry_explains_what_is_wrong(toml: str, expected: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(toml, EXAMPLE_ENV)

    assert expected in str(caught.value)


def test_badly_formatted_secret_is_reported_without_its_value() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry(APP_SOURCE, {"YUQING_SECRET_APP_MAIN": "too-short"})

    assert "YUQING_SECRET_APP_MAIN" in str(caught.value)
    assert "too-short" not in str(caught.value)


def test_unreadable_file_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError):
        load_registry(tmp_path / "missing.toml", {})


def test_api_key_is_kept_only_as_a_digest_and_authenticates() -> None:
    registry = load_registry(EXAMPLE, EXAMPLE_ENV)
    key = EXAMPLE_ENV["YUQING_API_KEY_CRM_95598"]

    source = registry.authenticate_api_key(key)

    assert source.id == "crm-95598"
    assert source.secret("api_key_sha256") == hashlib.sha256(key.encode()).hexdigest()
    assert key not in [source.secret(name) for name in source.secrets]
    with pytest.raises(InvalidApiKeyError):
        registry.authenticate_api_key(key + "x")


def test_secrets_do_not_appear_in_repr() -> None:
    registry = parse_registry(APP_SOURCE, EXAMPLE_ENV)

    assert EXAMPLE_ENV["YUQING_SECRET_APP_MAIN"] not in repr(registry.get("app-main"))


def test_pseudonym_is_stable_and_depends_on_the_salt() -> None:
    first = pseudonymize("salt-one-0123456789", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", prefix="wx")

    assert first == pseudonymize("salt-one-0123456789", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", prefix="wx")
    assert first != pseudonymize("salt-two-0123456789", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", prefix="wx")
    assert first.startswith("wx-") and "oUpF8" not in first
