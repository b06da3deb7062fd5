"""Who is calling: API keys (sha256 hashes at rest) or HS256 JWTs, roles and scopes.

An API key looks like ``yq_<key id>_<secret>``; only ``sha256(key)`` is stored,
either in the TOML file ``YUQING_SEARCH_API_KEYS_PATH`` (keys an operator
provisions) or in the ``<prefix>-api-keys`` index (keys an admin creates via
the API). The keys are 256-bit random, so a fast hash is enough: there is no
password to brute-force.

A bearer token is an HS256 JWT signed with ``YUQING_SEARCH_JWT_SECRET``, with
claims ``sub``, ``role``, ``exp``, ``aud`` and optionally ``regions``/``units``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from yuqing.paths import read_toml
from yuqing.text import place_name

KEY_PREFIX = "yq"


class Role(StrEnum):
    VIEWER = "viewer"
    RESPONDER = "responder"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    ACT = "act"
    ADMIN = "admin"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.RESPONDER: frozenset({Permission.READ, Permission.ACT}),
    Role.ADMIN: frozenset(Permission),
}


class Unauthenticated(Exception):
    """No credentials, or credentials that do not verify (HTTP 401)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    regions: frozenset[str] | None = None  # None: every region
    units: frozenset[str] | None = None  # None: every unit
    method: str = "api_key"

    def can(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    @property
    def scoped(self) -> bool:
        return self.regions is not None or self.units is not None

    def sees(self, region: str | None, unit: str | None) -> bool:
        return ((self.regions is None or region in self.regions)
                and (self.units is None or unit in self.units))


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    sha256: str
    role: Role
    regions: frozenset[str] | None = None
    units: frozenset[str] | None = None
    description: str = ""
    revoked: bool = False

    def principal(self) -> Principal:
        return Principal(self.key_id, self.role, self.regions, self.units, "api_key")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(key_id: str) -> str:
    if not key_id or "_" in key_id:
        raise ValueError("key id must be non-empty and without underscores")
    return f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def _scope(values: Any) -> frozenset[str] | None:
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("regions/units must be lists of strings")
    # read as the edge publishes a region or unit: ' 河口镇' matched no post
    names = [place_name(value) for value in values]
    if not names or not all(names):
        # such a scope matches no post: a key or token that saw nothing, without a word
        raise ValueError("regions/units must not be empty or blank (leave them out for every one)")
    return frozenset(str(name) for name in names)


def record_from(data: dict[str, Any]) -> KeyRecord:
    named = data.get("key_id") or data.get("id")
    missing = [name for name in ("sha256", "role") if name not in data]
    if not named or missing:
        fields = ["id", *missing] if not named else missing
        raise ValueError(f"key {named or '(no id)'}: missing {', '.join(fields)}")
    digest = str(data["sha256"]).lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"key {named}: sha256 must be 64 hex digits")
    key_id = str(named)
    if data["role"] not in {role.value for role in Role}:
        raise ValueError(f"key {key_id}: role must be one of {', '.join(role.value for role in Role)}")
    try:
        regions, units = _scope(data.get("regions")), _scope(data.get("units"))
    except ValueError as exc:
        raise ValueError(f"key {key_id}: {exc}") from exc
    return KeyRecord(key_id=key_id, sha256=digest, role=Role(data["role"]), regions=regions, units=units,
                     description=str(data.get("description", "")), revoked=bool(data.get("revoked", False)))


def load_key_file(path: Path) -> dict[str, KeyRecord]:
    """``[[keys]]`` tables: id, role, sha256, optional regions/units/description.

    A file that cannot be used is a ValueError naming it: ``[keys]`` (one table) stopped the API
    with a traceback, and a second entry of one id replaced the first, whose holder was refused.
    """
    entries = read_toml(path).get("keys", [])
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"{path}: keys must be an array of tables: write each key under its own [[keys]]")
    records: dict[str, KeyRecord] = {}
    try:
        for entry in entries:
            record = record_from(entry)
            if record.key_id in records:
                raise ValueError(f"key {record.key_id}: listed twice")
            records[record.key_id] = record
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return records


@dataclass
class KeyStore:
    """File keys plus keys looked up by id (the ES index), cached for ``ttl_s``."""

    file_keys: dict[str, KeyRecord] = field(default_factory=dict)
    lookup: Callable[[str], KeyRecord | None] | None = None
    ttl_s: float = 30.0
    _cache: dict[str, tuple[float, KeyRecord | None]] = field(default_factory=dict)

    def find(self, key_id: str) -> KeyRecord | None:
        if key_id in self.file_keys:
            return self.file_keys[key_id]
        if self.lookup is None:
            return None
        cached = self._cache.get(key_id)
        if cached and time.monotonic() - cached[0] < self.ttl_s:
            return cached[1]
        record = self.lookup(key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (time.monotonic(), record)
        return record

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    def verify(self, key: str) -> Principal:
        key_id = key_id_of(key)
        record = self.find(key_id) if key_id else None
        if record is None or record.revoked or not hmac.compare_digest(record.sha256, hash_key(key)):
            raise Unauthenticated("invalid API key")
        return record.principal()


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
MAX_TOKEN_CHARS = 8_192


def _b64decode(part: str) -> bytes:
    """Strict unpadded base64url (RFC 7515): one token has one spelling.

    The alphabet is checked, and the text must be what encoding the bytes gives
    back, so that trailing bits, padding or stray characters are refused.
    """
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if _b64encode(raw) != part:
        raise ValueError("not canonical base64url")
    return raw


def _json_object(raw: bytes) -> dict[str, Any]:
    # orjson refuses nesting deeper than 1,024 with an error (json.loads recurses until
    # RecursionError); only a JSON object is a JOSE header or a claims set.
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_jwt(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT (for tests and for operators minting tokens)."""
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, ensure_ascii=False).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64encode(signature)}"


def verify_jwt(token: str, *, secret: str, audience: str, now: float | None = None) -> Principal:
    """Check signature (HS256 only), ``exp``, ``nbf`` and ``aud``; return the caller.

    The signature is checked before anything of the token is parsed: an
    unauthenticated caller never reaches the JSON parser.
    """
    parts = token.split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3:
        raise Unauthenticated("malformed bearer token")
    header_b64, payload_b64, signature_b64 = parts
    try:
        signature = _b64decode(signature_b64)
    except ValueError as exc:
        raise Unauthenticated("malformed bearer token") from exc
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), signature):
        raise Unauthenticated("bad bearer token signature")
    try:
        header = _json_object(_b64decode(header_b64))
        claims = _json_object(_b64decode(payload_b64))
    except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
        raise Unauthenticated("malformed bearer token") from exc
    if header.get("alg") != "HS256":
        raise Unauthenticated("bearer token must be signed with HS256")
    return _principal_from_claims(claims, audience, time.time() if now is None else now)


def _principal_from_claims(claims: Any, audience: str, now: float) -> Principal:
    if not isinstance(claims, dict):
        raise Unauthenticated("malformed bearer token")
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int | float) or exp <= now:
        raise Unauthenticated("bearer token expired or without exp")
    if not isinstance(nbf, int | float) or nbf > now + 30:
        raise Unauthenticated("bearer token not valid yet")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise Unauthenticated("bearer token for another audience")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthenticated("bearer token claims: sub must be a non-blank string")
    try:
        return Principal(subject, Role(claims["role"]), _scope(claims.get("regions")),
                         _scope(claims.get("units")), "jwt")
    except (KeyError, ValueError) as exc:
        raise Unauthenticated(f"bearer token claims: {exc}") from exc

