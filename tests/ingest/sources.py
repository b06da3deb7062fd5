"""A registry with one source of every kind, and its secrets, for the ingest API tests."""

from __future__ import annotations

from services.ingest.registry import SourceRegistry, parse_registry

API_KEY = "k" * 40
APP_SECRET = "app-secret-0123456789abcdefghijklmnop"
APP_SECRET_PREVIOUS = "old-app-secret-0123456789abcdefghijkl"
WECHAT_TOKEN = "wxtoken2026"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECHAT_APP_ID = "wx5823bf96d3bd56c7"
SALT = "salt-0123456789abcdef"

ENV = {
    "T_API_KEY": API_KEY,
    "T_APP_SECRET": APP_SECRET,
    "T_APP_SECRET_PREVIOUS": APP_SECRET_PREVIOUS,
    "T_WECHAT_TOKEN": WECHAT_TOKEN,
    "T_WECHAT_AES_KEY": WECHAT_AES_KEY,
    "T_SALT": SALT,
}


def registry_toml(*, forum_url: str | None = None, rate_limit_per_s: float | None = None) -> str:
    """``forum_url``: a Discourse base URL to poll (no forum source without it)."""
    limit = f"rate_limit_per_s = {rate_limit_per_s}\nrate_limit_burst = 2\n" if rate_limit_per_s else ""
    text = f"""
[[sources]]
id = "partner"
channel = "integration"
owner = "tests"
api_key_env = "T_API_KEY"
max_batch = 50
region = "城关镇"
{limit}
[[sources]]
id = "app-main"
channel = "app"
owner = "tests"
unit = "城关供电所"
hmac_secret_env = "T_APP_SECRET"
hmac_secret_previous_env = "T_APP_SECRET_PREVIOUS"

[[sources]]
id = "wechat-service"
channel = "wechat"
owner = "tests"
app_id = "{WECHAT_APP_ID}"
token_env = "T_WECHAT_TOKEN"
encoding_aes_key_env = "T_WECHAT_AES_KEY"
author_salt_env = "T_SALT"
region = "柳塘镇"

[[sources]]
id = "wechat-plain"
channel = "wechat"
owner = "tests"
app_id = "{WECHAT_APP_ID}"
token_env = "T_WECHAT_TOKEN"
author_salt_env = "T_SALT"

[[sources]]
id = "app-retired"
channel = "app"
owner = "tests"
enabled = false
hmac_secret_env = "T_UNSET_SECRET"
"""
    if forum_url:
        text += f"""
[[sources]]
id = "forum-intranet"
channel = "forum"
owner = "tests"
kind = "discourse"
base_url = "{forum_url}"
author_salt_env = "T_SALT"
poll_interval_s = 1
min_request_interval_s = 0
max_attempts = 2
max_backoff_s = 2
backfill_pages = 5
"""
    return text


def registry(**options: object) -> SourceRegistry:
    return parse_registry(registry_toml(**options), ENV)  # type: ignore[arg-type]
