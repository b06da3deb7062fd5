import time

import pytest

from services.search.auth import (
    KeyStore,
    Permission,
    Role,
    Unauthenticated,
    hash_key,
    key_id_of,
    load_key_file,
    new_key,
    sign_jwt,
    verify_jwt,
)

SECRET = "s" * 40


def test_key_file_holds_only_hashes_and_keys_verify(tmp_path):
    key = new_key("desk")
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nid = "desk"\nrole = "responder"\nsha256 = "{hash_key(key)}"\n'
                    f'regions = ["河口镇"]\n', encoding="utf-8")
    store = KeyStore(file_keys=load_key_file(path))
    assert key not in path.read_text()
    principal = store.verify(key)
    assert principal.role is Role.RESPONDER and principal.regions == frozenset({"河口镇"})
    assert principal.can(Permission.ACT) and not principal.can(Permission.ADMIN)
    for wrong in (key + "x", "yq_desk_nope", "garbage", new_key("other")):
        with pytest.raises(Unauthenticated):
            store.verify(wrong)


def test_looked_up_keys_are_cached_and_revocation_counts():
    key = new_key("api")
    calls = []

    def lookup(key_id):
        from services.search.auth import KeyRecord

        calls.append(key_id)
        return KeyRecord(key_id, hash_key(key), Role.VIEWER, revoked=len(calls) > 1)

    store = KeyStore(lookup=lookup, ttl_s=60)
    assert store.verify(key).role is Role.VIEWER
    assert store.verify(key).role is Role.VIEWER and len(calls) == 1
    store.forget("api")
    with pytest.raises(Unauthenticated):
        store.verify(key)
    assert key_id_of(key) == "api" and key_id_of("yq__x") is None


def _claims(**extra):
    return {"sub": "王工", "role": "viewer", "aud": "yuqing-search", "exp": time.time() + 60, **extra}


def test_jwt_good_token():
    principal = verify_jwt(sign_jwt(_claims(regions=["河口镇"]), SECRET), secret=SECRET,
                           audience="yuqing-search")
    assert principal.subject == "王工" and principal.regions == frozenset({"河口镇"})
    assert principal.method == "jwt" and not principal.can(Permission.ACT)


@pytest.mark.parametrize("token", [
    sign_jwt(_claims(exp=time.time() - 1), SECRET),
    sign_jwt(_claims(aud="other"), SECRET),
    sign_jwt(_claims(role="root"), SECRET),
    sign_jwt(_claims(), "t" * 40),
    sign_jwt({k: v for k, v in _claims().items() if k != "exp"}, SECRET),
    "a.b", "a.b.c",
    # alg=none with an empty signature must never pass
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + sign_jwt(_claims(), SECRET).split(".")[1] + ".",
])
def test_jwt_bad_tokens(token):
    with pytest.raises(Unauthenticated):
        verify_jwt(token, secret=SECRET, audience="yuqing-search")


