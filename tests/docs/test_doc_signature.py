"""The integrators guide's APP signature: its worked example is the signature the server computes,
and its curl/openssl and Python snippets sign as the server verifies."""

from __future__ import annotations

import re
import shutil
import subprocess
from types import SimpleNamespace
from typing import Any

import pytest
from doc_text import REPO_ROOT, code_blocks

from services.ingest.app_webhook import AppRequestVerifier, sign_app_request

INTEGRATORS = REPO_ROOT / "docs" / "integrators.md"


def documented_headers() -> dict[str, str]:
    block = next(b.text for b in code_blocks(INTEGRATORS) if "X-Yuqing-Signature:" in b.text)
    return dict(line.split(": ", 1) for line in block.splitlines() if line.startswith("X-Yuqing-"))


def documented_secret() -> str:
    found = re.search(r"signed with the\s+secret `([^`]+)`", INTEGRATORS.read_text(encoding="utf-8"))
    assert found, "the guide names the secret of its signature example"
    return found.group(1)


def curl_example() -> str:
    return next(b.text for b in code_blocks(INTEGRATORS) if b.language == "sh" and "openssl" in b.text)


def documented_body() -> bytes:
    found = re.search(r"^BODY='(.*)'$", curl_example(), re.M)
    assert found
    return found.group(1).encode()


def test_the_worked_example_has_the_signature_the_server_computes() -> None:
    headers = documented_headers()
    timestamp = int(headers["X-Yuqing-Timestamp"])

    signature = sign_app_request(documented_secret(), documented_body(), timestamp,
                                 headers["X-Yuqing-Request-Id"])

    assert headers["X-Yuqing-Signature"] == signature
    verifier = AppRequestVerifier(clock=lambda: float(timestamp))
    verified = verifier.verify(source_id="app-main", secrets=[documented_secret()], headers=headers,
                               body=documented_body())
    assert verified.request_id == headers["X-Yuqing-Request-Id"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_openssl_line_gives_the_worked_example() -> None:
    headers = documented_headers()
    [line] = [line for line in curl_example().splitlines() if line.startswith("SIG=")]
    env = {"PATH": "/usr/bin:/bin", "TS": headers["X-Yuqing-Timestamp"],
           "RID": headers["X-Yuqing-Request-Id"], "SECRET": documented_secret(),
           "BODY": documented_body().decode()}

    run = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$SIG"'], env=env, capture_output=True,
                         text=True, check=True)

    assert "sha256=" + run.stdout == headers["X-Yuqing-Signature"]


def test_the_python_example_signs_as_the_server_verifies() -> None:
    block = next(b.text for b in code_blocks(INTEGRATORS)
                 if b.language == "python" and "def send_feedback" in b.text)
    namespace: dict[str, Any] = {}
    exec(compile(block, str(INTEGRATORS), "exec"), namespace)
    sent: dict[str, Any] = {}
    namespace["time"] = SimpleNamespace(time=lambda: 1764332100.7)
    namespace["httpx"] = SimpleNamespace(post=lambda url, **kwargs: sent.update(url=url, **kwargs))

    namespace["send_feedback"](documented_secret(), {"feedback_id": "fb-1", "content": "这个月电费218"})

    verifier = AppRequestVerifier(clock=lambda: 1764332100.0)
    verified = verifier.verify(source_id="app-main", secrets=[documented_secret()],
                               headers=sent["headers"], body=sent["content"])
    assert verified.timestamp == 1764332100
    assert sent["url"].endswith("/v1/app/app-main")
