"""Source registry: which sources may send posts, and how each one authenticates.

The registry is a TOML file with one ``[[sources]]`` table per source (see
``config/sources.example.toml``). Secrets never appear in the file: every field
ending in ``_env`` names the environment variable that holds the secret, and
:func:`load_registry` resolves them once at start-up. Adding a source is an
edit of the file plus one environment variable; no code changes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from yuqing.contracts import Channel
from yuqing.paths import read_utf8

EnvVarName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{2,127}$")]
SourceIdField = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")]
Label = Annotated[str | None, Field(min_length=1, max_length=64)]
HttpUrlText = Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2_048)]

_ENV_SUFFIX = "_env"
_SECRET_LOOKING_KEY = re.compile(r"(secret|token|password|api_key|aes_key|salt)$")


class RegistryError(Exception):
    """The registry file is invalid or a secret it references is missing."""


class MissingSecretError(RegistryError):
    """An enabled source references an environment variable that is unset or empty."""

    def __init__(self, source_id: str, env_var: str) -> None:
        super().__init__(f"source {source_id!r}: environment variable {env_var} is not set")
        self.source_id = source_id
        self.env_var = env_var


class UnknownSourceError(RegistryError, LookupError):
    """No source with this id is registered (HTTP 404 or 403 at the edge)."""


class SourceDisabledError(RegistryError):
    """The source is registered but disabled (HTTP 403 at the edge)."""


class InvalidApiKeyError(RegistryError):
    """No integration source has this API key (HTTP 401 at the edge)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SourceBase(_Model):
    # Secret name -> regex its value must match; names are field names without "_env".
    secret_rules: ClassVar[dict[str, str]] = {}
    # Inbound credentials kept only as a SHA-256 digest.
    hashed_secrets: ClassVar[frozenset[str]] = frozenset()

    id: SourceIdField
    owner: Annotated[str, Field(min_length=1, max_length=128)]
    description: Annotated[str, Field(max_length=1_000)] = ""
    enabled: bool = True
    region: Label = None
    unit: Label = None

    def secret_env_vars(self) -> dict[str, str]:
        """Secret name -> environment variable, for every ``*_env`` field that is set."""
        refs = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith(_ENV_SUFFIX) and value is not None:
                refs[name.removesuffix(_ENV_SUFFIX)] = value
        return refs


class _PushSourceBase(_SourceBase):
    """A source that sends requests to the API; its limits override the service defaults."""

    rate_limit_per_s: Annotated[float | None, Field(
        gt=0, le=100_000, description="requests per second; unset: the service default")] = None
    rate_limit_burst: Annotated[int | None, Field(ge=1, le=1_000_000)] = None


class AppSourceConfig(_PushSourceBase):
    """The mobile APP feedback webhook (HMAC-signed requests)."""

    secret_rules: ClassVar[dict[str, str]] = {
        "hmac_secret": r"^.{32,}$",
        "hmac_secret_previous": r"^.{32,}$",
    }

    channel: Literal[Channel.APP]
    hmac_secret_env: EnvVarName
    hmac_secret_previous_env: EnvVarName | None = Field(
        default=None, description="the secret being rotated out; accepted until removed")
    replay_window_s: Annotated[int, Field(ge=30, le=3_600)] = 300


class WeChatSourceConfig(_PushSourceBase):
    """A WeChat official account (plaintext or safe mode)."""

    secret_rules: ClassVar[dict[str, str]] = {
        "token": r"^[A-Za-z0-9]{3,32}$",
        "encoding_aes_key": r"^[A-Za-z0-9]{43}$",
        "author_salt": r"^.{16,}$",
    }

    channel: Literal[Channel.WECHAT]
    app_id: Annotated[str, Field(pattern=r"^wx[0-9a-f]{16}$")]
    token_env: EnvVarName
    encoding_aes_key_env: EnvVarName | None = Field(
        default=None, description="unset: plaintext mode only")
    author_salt_env: EnvVarName


class ForumSourceConfig(_SourceBase):
    """An intranet forum polled over HTTP (Discourse ``/posts.json`` or an RSS/Atom feed)."""

    secret_rules: ClassVar[dict[str, str]] = {"author_salt": r"^.{16,}$", "api_key": r"^.{8,}$"}

    channel: Literal[Channel.FORUM]
    kind: Literal["discourse", "rss"]
    base_url: HttpUrlText | None = None
    feed_url: HttpUrlText | None = None
    author_salt_env: EnvVarName
    api_key_env: EnvVarName | None = Field(default=None, description="Discourse Api-Key, optional")
    api_username: Annotated[str | None, Field(max_length=64)] = None
    poll_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 60
    min_request_interval_s: Annotated[float, Field(ge=0, le=3_600)] = 1.0
    max_backoff_s: Annotated[float, Field(gt=0, le=86_400)] = 300
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10
    max_pages: Annotated[int, Field(ge=1, le=1_000)] = 20
    backfill_pages: Annotated[int, Field(ge=0, le=1_000)] = 1

    @model_validator(mode="after")
    def _url_matches_kind(self) -> ForumSourceConfig:
        urls = ("base_url", "feed_url")
        wanted, unwanted = urls if self.kind == "discourse" else urls[::-1]
        if getattr(self, wanted) is None:
            raise ValueError(f"kind = {self.kind!r} needs {wanted}")
        if getattr(self, unwanted) is not None:
            raise ValueError(f"kind = {self.kind!r} does not use {unwanted}")
        return self


class IntegrationSourceConfig(_PushSourceBase):
    """A partner system pushing posts to ``POST /v1/posts`` with an API key."""

    secret_rules: ClassVar[dict[str, str]] = {"api_key": r"^.{32,}$"}
    hashed_secrets: ClassVar[frozenset[str]] = frozenset({"api_key"})

    channel: Literal[Channel.INTEGRATION]
    api_key_env: EnvVarName
    max_batch: Annotated[int, Field(ge=1, le=1_000)] = 100


SourceConfig = Annotated[
    AppSourceConfig | WeChatSourceConfig | ForumSourceConfig | IntegrationSourceConfig,
    Field(discriminator="channel"),
]


class _RegistryFile(_Model):
    sources: list[SourceConfig] = Field(default_factory=list)


@dataclass(frozen=True)
class RegisteredSource:
    """A source's configuration together with its resolved secrets."""

    config: SourceConfig
    secrets: Mapping[str, SecretStr] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def channel(self) -> Channel:
        return self.config.channel

    def secret(self, name: str) -> str:
        """The value of a required secret, e.g. ``secret("hmac_secret")``."""
        return self.secrets[name].get_secret_value()

    def optional_secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return None if value is None else value.get_secret_value()


class SourceRegistry:
    """Registered sources by id; lookups refuse unknown and disabled sources."""

    def __init__(self, sources: list[RegisteredSource]) -> None:
        self._by_id = {source.id: source for source in sources}

    def get(self, source_id: str) -> RegisteredSource:
        """The enabled source ``source_id``; raises UnknownSourceError or SourceDisabledError."""
        source = self._by_id.get(source_id)
        if source is None:
            raise UnknownSourceError(f"unknown source {source_id!r}")
        if not source.config.enabled:
            raise SourceDisabledError(f"source {source_id!r} is disabled")
        return source

    def sources(self, channel: Channel | None = None, *, include_disabled: bool = False,
                ) -> Iterator[RegisteredSource]:
        for source in self._by_id.values():
            if channel is not None and source.channel != channel:
                continue
            if include_disabled or source.config.enabled:
                yield source

    def authenticate_api_key(self, presented: str) -> RegisteredSource:
        """The enabled integration source whose API key is ``presented`` (compared as SHA-256
        digests); SourceDisabledError for the key of a disabled one, InvalidApiKeyError for any other.

        A disabled source's key is known when its variable is still set: its sender is told the
        source is disabled (403, ask the operators), not that its key is wrong."""
        digest = _sha256_hex(presented)
        match: RegisteredSource | None = None
        for source in self.sources(Channel.INTEGRATION, include_disabled=True):
            known = source.optional_secret("api_key_sha256")
            # Compare against every source so timing does not reveal which one matched.
            if known is not None and hmac.compare_digest(digest, known):
                match = source
        if match is None:
            raise InvalidApiKeyError("invalid API key")
        if not match.config.enabled:
            raise SourceDisabledError(f"source {match.id!r} is disabled")
        return match

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._by_id


def load_registry(path: str | Path, environ: Mapping[str, str], *,
                  only: str | None = None) -> SourceRegistry:
    """Read the registry file at ``path`` and resolve secrets from ``environ`` (those of source
    ``only`` alone, when given: a back-fill needs no other source's)."""
    path = Path(path)
    try:
        text = read_utf8(path)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read registry: {exc.strerror}") from exc
    except ValueError as exc:
        raise RegistryError(str(exc)) from None
    return parse_registry(text, environ, origin=str(path), only=only)


def parse_registry(text: str, environ: Mapping[str, str], *, origin: str = "<registry>",
                   only: str | None = None) -> SourceRegistry:
    """Like :func:`load_registry`, from the TOML text itself."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{origin}: not valid TOML: {exc}") from exc
    try:
        parsed = _RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(f"{origin}: invalid registry:\n{_describe(exc, data)}") from exc
    _check_unique_ids(parsed.sources, origin)
    return SourceRegistry([_resolve(config, environ) if only in (None, config.id)
                           else RegisteredSource(config) for config in parsed.sources])


def pseudonymize(salt: str, value: str, *, prefix: str) -> str:
    """A stable pseudonym for an account id: keyed hash, so the id cannot be looked up."""
    digest = hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"{prefix}-{digest[:24]}"


def _resolve(config: SourceConfig, environ: Mapping[str, str]) -> RegisteredSource:
    if not config.enabled:
        return RegisteredSource(config, _known_digests(config, environ))
    secrets: dict[str, SecretStr] = {}
    for name, env_var in config.secret_env_vars().items():
        value = environ.get(env_var, "")
        if not value:
            raise MissingSecretError(config.id, env_var)
        rule = config.secret_rules.get(name)
        if rule is not None and not re.fullmatch(rule, value):
            raise RegistryError(
                f"source {config.id!r}: the value of {env_var} has the wrong format for {name}"
                f" (expected {rule})")
        if name in config.hashed_secrets:
            secrets[f"{name}_sha256"] = SecretStr(_sha256_hex(value))
        else:
            secrets[name] = SecretStr(value)
    return RegisteredSource(config, secrets)


def _known_digests(config: SourceConfig, environ: Mapping[str, str]) -> dict[str, SecretStr]:
    # A disabled source needs no secret; a key still set is kept (as its digest alone) to name it.
    digests = {}
    for name, env_var in config.secret_env_vars().items():
        value = environ.get(env_var, "")
        if name in config.hashed_secrets and value:
            digests[f"{name}_sha256"] = SecretStr(_sha256_hex(value))
    return digests


def _check_unique_ids(sources: list[SourceConfig], origin: str) -> None:
    seen: set[str] = set()
    for config in sources:
        if config.id in seen:
            raise RegistryError(f"{origin}: source id {config.id!r} is listed twice")
        seen.add(config.id)


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    lines = []
    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list):
        raw_sources = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = _location(loc, raw_sources)
        message = error["msg"]
        key = str(loc[-1]) if loc else ""
        if error["type"] == "extra_forbidden" and _SECRET_LOOKING_KEY.search(key):
            message = (f"secrets are never written in the file; use {key}_env = \"ENV_VAR_NAME\""
                       " and set that variable")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _location(loc: list[Any], raw_sources: list[Any]) -> str:
    if len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
        index = loc[1]
        raw = raw_sources[index] if index < len(raw_sources) else {}
        label = f"sources[{index}]"
        if isinstance(raw, dict) and "id" in raw:
            label += f" (id={raw['id']!r})"
        # loc[2] is the discriminator tag (the channel); the rest is the field path.
        rest = [str(part) for part in loc[3:]]
        return ".".join([label, *rest]) if rest else label
    return ".".join(str(part) for part in loc) or "<root>"


def _sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
