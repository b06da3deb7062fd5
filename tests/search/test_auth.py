import re
import time

import pytest
from click.testing import Result
from typer.testing import CliRunner

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
from yuqing.cli import app as cli

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


def test_a_scope_is_read_as_the_edge_publishes_a_region_or_unit(tmp_path):
    # the edge publishes 河口镇 for ' 河口镇' and '河口镇\u200b': a key or token scoped so saw nothing
    token = verify_jwt(sign_jwt(_claims(regions=[" 河口镇", "石门镇\u200b"], units=["城关供电所 "]), SECRET),
                       secret=SECRET, audience="yuqing-search")
    assert (token.regions, token.units) == (frozenset({"河口镇", "石门镇"}), frozenset({"城关供电所"}))
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nid = "desk"\nrole = "viewer"\nsha256 = "{"0" * 64}"\n'
                    'regions = ["河口镇 "]\n', encoding="utf-8")
    assert load_key_file(path)["desk"].regions == frozenset({"河口镇"})
    made = _cli("new-key", "--id", "hekou-desk", "--role", "responder", "--region", "\u200b河口镇")
    assert 'regions = ["河口镇"]' in made.output, made.output


# made when the test runs (a token signed at collection would also fail for having expired)
@pytest.mark.parametrize("make", [
    lambda: sign_jwt(_claims(exp=time.time() - 1), SECRET),
    lambda: sign_jwt(_claims(aud="other"), SECRET),
    lambda: sign_jwt(_claims(role="root"), SECRET),
    lambda: sign_jwt(_claims(), "t" * 40),
    lambda: sign_jwt({k: v for k, v in _claims().items() if k != "exp"}, SECRET),
    lambda: "a.b", lambda: "a.b.c",
    # alg=none with an empty signature must never pass
    lambda: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + sign_jwt(_claims(), SECRET).split(".")[1] + ".",
])
def test_jwt_bad_tokens(make):
    with pytest.raises(Unauthenticated):
        verify_jwt(make(), secret=SECRET, audience="yuqing-search")




@pytest.mark.parametrize("scope", ['regions = []', 'regions = [""]', 'units = ["城关供电所", "  "]'])
def test_a_key_file_entry_scoped_to_nothing_is_refused_naming_the_key(tmp_path, scope):
    # such a key saw nothing: every search answered 0 posts, with no word of why
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nid = "desk"\nrole = "viewer"\nsha256 = "{"0" * 64}"\n{scope}\n',
                    encoding="utf-8")
    with pytest.raises(ValueError, match="key desk: regions/units must not be empty or blank"):
        load_key_file(path)


@pytest.mark.parametrize(("entry", "said"), [
    ('id = "desk"\nrole = "viewer"', "key desk: missing sha256"),
    (f'id = "desk"\nsha256 = "{"0" * 64}"', "key desk: missing role"),
    (f'role = "viewer"\nsha256 = "{"0" * 64}"', "key [(]no id[)]: missing id"),
    (f'id = "desk"\nrole = "boss"\nsha256 = "{"0" * 64}"',
     "key desk: role must be one of viewer, responder, admin")])
def test_a_key_file_entry_without_a_field_names_the_file_the_key_and_the_field(tmp_path, entry, said):
    # the API stopped at start with "error: KeyError: 'sha256'", naming neither the key nor the file
    path = tmp_path / "keys.toml"
    path.write_text(f"[[keys]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{path}: {said}$"):
        load_key_file(path)


@pytest.mark.parametrize("extra", [
    {"regions": [""]}, {"units": ["\u3000"]}, {"regions": []}, {"sub": ""}, {"sub": "  "}, {"sub": 7},
    {"sub": None}])
def test_a_token_with_a_blank_subject_or_scope_is_refused(extra):
    # signed when the test runs: a token made at collection expires before a long session reaches it
    with pytest.raises(Unauthenticated, match="bearer token claims"):
        verify_jwt(sign_jwt(_claims(**extra), SECRET), secret=SECRET, audience="yuqing-search")


def _cli(*args: str) -> Result:
    return CliRunner().invoke(cli, ["search", *args], env={"YUQING_SEARCH_JWT_SECRET": SECRET,
                                                           "COLUMNS": "200"})


@pytest.mark.parametrize("args", [
    ["--id", 'a"b', "--role", "viewer"], ["--id", "Desk", "--role", "viewer"],
    ["--id", "河口", "--role", "viewer"], ["--id", "desk", "--role", "viewer", "--region", ""],
    ["--id", "desk", "--role", "viewer", "--unit", "城关供电所", "--unit", "  "]])
def test_new_key_refuses_what_the_admin_api_refuses(args):
    made = _cli("new-key", *args)
    assert made.exit_code == 1 and "yq_" not in made.output and made.output.startswith("error: KeyCreate")


def test_new_key_prints_an_entry_the_key_file_loads(tmp_path):
    made = _cli("new-key", "--id", "hekou-desk", "--role", "responder", "--region", "河口镇")
    assert made.exit_code == 0, made.output
    path = tmp_path / "keys.toml"
    path.write_text(made.output[made.output.index("[[keys]]"):], encoding="utf-8")
    key = made.output.split()[3]
    principal = KeyStore(file_keys=load_key_file(path)).verify(key)
    assert (principal.subject, principal.regions) == ("hekou-desk", frozenset({"河口镇"}))


@pytest.mark.parametrize("args", [["--sub", " "], ["--sub", "王工", "--region", ""],
                                  ["--sub", "王工", "--unit", "\u3000"]])
def test_token_refuses_a_blank_subject_region_or_unit(args):
    minted = _cli("token", "--role", "viewer", *args)
    assert minted.exit_code == 2 and "must not be blank" in minted.output


def test_token_without_a_secret_is_one_line_and_1(monkeypatch):
    # it was a usage error boxed over several lines with exit 2, as if an option were wrong
    monkeypatch.delenv("YUQING_SEARCH_JWT_SECRET", raising=False)
    minted = CliRunner().invoke(cli, ["search", "token", "--sub", "王工", "--role", "viewer"])

    assert minted.exit_code == 1
    [line] = minted.output.strip().splitlines()
    assert line.startswith("error: YUQING_SEARCH_JWT_SECRET is not set")


@pytest.mark.parametrize(("body", "said"), [
    # a table ([keys], one bracket) or a string for the array of tables: the API stopped at start
    # with an AttributeError traceback
    (f'[keys]\nid = "desk"\nrole = "viewer"\nsha256 = "{"0" * 64}"\n',
     "keys must be an array of tables: write each key under its own [[keys]]"),
    ('keys = "desk"\n', "keys must be an array of tables: write each key under its own [[keys]]"),
    # the second entry replaced the first, whose holder was refused (401) with no word why
    (f'[[keys]]\nid = "desk"\nrole = "viewer"\nsha256 = "{"0" * 64}"\n'
     f'[[keys]]\nid = "desk"\nrole = "admin"\nsha256 = "{"1" * 64}"\n', "key desk: listed twice"),
    # not TOML: the error named neither the file nor that it was the key file
    ('[[keys]\nid = "desk"\n', "not a TOML file"),
])
def test_a_key_file_that_cannot_be_used_is_one_error_naming_it(tmp_path, body, said):
    path = tmp_path / "keys.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=f"^{path}: {re.escape(said)}"):
        load_key_file(path)


def test_the_search_api_stops_on_such_a_file_in_one_line(tmp_path):
    from tests.test_cli import _yuqing

    path = tmp_path / "keys.toml"
    path.write_text(f'[keys]\nid = "desk"\nrole = "viewer"\nsha256 = "{"0" * 64}"\n', encoding="utf-8")

    done = _yuqing("search", "serve", env={"YUQING_SEARCH_API_KEYS_PATH": str(path),
                                           "YUQING_HOME": str(tmp_path), "YUQING_SEARCH_PORT": "0"})

    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: keys must be an array of tables: write each key under its own [[keys]]"]
