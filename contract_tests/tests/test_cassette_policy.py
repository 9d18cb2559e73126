"""The cassette policy's parts: scrubbing, the vcrpy options, and the secret scanner (run over
every cassette committed in this repository)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.request import Request

from omsbridge_contract.cassettes import (
    REDACTED,
    base_vcr_config,
    is_sensitive_header,
    scan_cassette,
    scan_tree,
    scrub_request,
    scrub_response,
)

REPO = Path(__file__).resolve().parents[2]
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyb2JpbiJ9.Zm9vYmFyYmF6"


def test_request_headers_query_and_bodies_are_scrubbed() -> None:
    request = Request(
        "POST",
        "https://login.example.com/services/oauth2/token?api_key=k123&page=2",
        "grant_type=password&username=u&password=hunter2&client_secret=abc",  # dummy value, not a secret
        {
            "Authorization": "Bearer abc.def",
            "Cookie": "sid=1234567",
            "X-Merchant-Api-Key": "mk",
            "Idempotency-Key": "CT-1",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    scrubbed = scrub_request(request)
    assert scrubbed.headers["Authorization"] == REDACTED
    assert scrubbed.headers["Cookie"] == REDACTED
    assert scrubbed.headers["X-Merchant-Api-Key"] == REDACTED
    assert scrubbed.headers["Idempotency-Key"] == "CT-1", "not a secret: keep it for review"
    assert "api_key=REDACTED" in scrubbed.uri and "page=2" in scrubbed.uri
    body = scrubbed.body.decode()
    assert "hunter2" not in body and "abc" not in body and "username=u" in body


def test_json_request_bodies_are_scrubbed_at_any_depth() -> None:
    body = {"auth": {"clientSecret": "s", "assertion": JWT}, "order": {"total": "1.00"}}
    request = Request(
        "POST", "http://127.0.0.1:5000/x", json.dumps(body), {"Content-Type": "application/json"}
    )
    data = json.loads(scrub_request(request).body)
    assert data["auth"] == {"clientSecret": REDACTED, "assertion": REDACTED}
    assert data["order"] == {"total": "1.00"}


def test_token_answers_and_cookies_are_scrubbed_on_the_response_side() -> None:
    answer = {
        "access_token": "00D5g000004Xyz!AQcAQH0dMHZfz972Szmpkb58urFRkgeBGsxL_QJWwYMfAbUeeG7c1",  # dummy value, not a secret
        "refresh_token": "5Aep861xyz",
        "id_token": JWT,
        "instance_url": "https://acme.my.salesforce.com",
        "signature": "sig=",
        "token_type": "Bearer",
    }
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "Content-Type": ["application/json"],
            "Set-Cookie": ["BrowserId=abcdef123; Path=/"],
            "Date": ["Sun, 22 Nov 2026 00:00:00 GMT"],
            "Content-Length": ["999"],
        },
        "body": {"string": json.dumps(answer).encode()},
    }
    scrubbed = scrub_response(response)
    data = json.loads(scrubbed["body"]["string"])
    assert data["access_token"] == data["refresh_token"] == data["id_token"] == REDACTED
    assert data["signature"] == REDACTED
    assert "acme" not in data["instance_url"], "a tenant's instance URL is identifying"
    assert data["token_type"] == "Bearer"
    assert "Set-Cookie" not in scrubbed["headers"] and "Date" not in scrubbed["headers"]
    assert scrubbed["headers"]["Content-Length"] == [str(len(scrubbed["body"]["string"]))]


def test_loopback_instance_urls_are_kept() -> None:
    body = json.dumps({"access_token": "x", "instance_url": "http://127.0.0.1:8443"}).encode()
    response = {"headers": {"Content-Type": ["application/json"]}, "body": {"string": body}}
    data = json.loads(scrub_response(response)["body"]["string"])
    assert data["instance_url"] == "http://127.0.0.1:8443", "the sandbox URL is needed to replay"


def test_free_text_token_shapes_are_replaced() -> None:
    response = {
        "headers": {"Content-Type": ["text/html"]},
        "body": {"string": f"<p>Authorization: Bearer abcdefghijkl {JWT}</p>".encode()},
    }
    text = scrub_response(response)["body"]["string"].decode()
    assert JWT not in text and "abcdefghijkl" not in text


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("X-API-Key", True),
        ("X-Auth-Token", True),
        ("Set-Cookie", True),
        ("Idempotency-Key", False),
        ("Sforce-Limit-Info", False),
        ("Content-Type", False),
    ],
)
def test_sensitive_header_names(name: str, sensitive: bool) -> None:
    assert is_sensitive_header(name) is sensitive


def test_vcr_options_replay_strictly_and_scrub_last() -> None:
    seen: list[str] = []

    def harness_hook(request: Request) -> Request:
        seen.append(request.headers.get("Authorization", ""))
        request.headers["Authorization"] = (
            "Bearer put-back-by-a-harness"  # dummy value, not a secret
        )
        return request

    replay = base_vcr_config("none", {"before_record_request": harness_hook, "match_on": ("uri",)})
    assert replay["allow_playback_repeats"] is False
    assert replay["drop_unused_requests"] is False, "replay must never rewrite a cassette"
    assert replay["record_on_exception"] is False
    assert replay["decode_compressed_response"] is True
    assert replay["match_on"] == ("uri",), "a harness may choose how requests match"
    request = Request("GET", "http://x/", None, {"Authorization": "Bearer secret"})
    assert replay["before_record_request"](request).headers["Authorization"] == REDACTED
    assert seen == ["Bearer secret"], "the harness's hook runs first"
    recording = base_vcr_config("new_episodes", {"allow_playback_repeats": True})
    assert recording["drop_unused_requests"] is True, "re-recording sheds stale interactions"
    assert recording["allow_playback_repeats"] is False, "no harness may allow repeats"


def _cassette(tmp_path: Path, request: str, response: str) -> Path:
    path = tmp_path / "cassette.yaml"
    path.write_text(f"interactions:\n- request: {request}\n  response: {response}\nversion: 1\n")
    return path


@pytest.mark.parametrize(
    ("request_", "response", "kind"),
    [
        ("{uri: 'http://x/', headers: {authorization: [Bearer abcdefghij]}}", "{}", "credential"),
        ("{uri: 'http://x/', headers: {}}", "{headers: {Set-Cookie: ['a=b']}}", "Set-Cookie"),
        (
            "{uri: 'http://x/', body: 'grant_type=password&password=hunter22'}",  # dummy value, not a secret
            "{}",
            "form field 'password'",
        ),
        ("{uri: 'http://x/?access_token=abc'}", "{}", "query parameter 'access_token'"),
        (
            "{uri: 'http://x/'}",
            '{body: {string: \'{"refresh_token": "5Aep861abc"}\'}}',
            "'refresh_token'",
        ),
        ("{uri: 'http://x/'}", f"{{body: {{string: 'token {JWT}'}}}}", "JSON web token"),
        (
            "{uri: 'http://x/'}",
            '{body: {string: \'{"instance_url": "https://acme.my.salesforce.com"}\'}}',
            "tenant-identifying",
        ),
        ("{uri: 'http://x/'}", "{body: {string: 'Cookie: JSESSIONID=ABCDEF123456'}}", "cookie"),
    ],
)
def test_the_scanner_finds_planted_secrets(
    tmp_path: Path, request_: str, response: str, kind: str
) -> None:
    findings = scan_cassette(_cassette(tmp_path, request_, response))
    assert any(kind in f.kind for f in findings), findings


def test_the_scanner_accepts_scrubbed_values(tmp_path: Path) -> None:
    path = _cassette(
        tmp_path,
        "{uri: 'http://x/?api_key=REDACTED', headers: {Authorization: [REDACTED]},"
        " body: 'client_secret=REDACTED&client_id=pos'}",
        '{headers: {}, body: {string: \'{"access_token":"REDACTED","token_type":"Bearer"}\'}}',
    )
    assert scan_cassette(path) == []


def test_the_scanner_refuses_unsafe_yaml(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("interactions: !!python/object/apply:os.system ['true']\n")
    findings = scan_cassette(path)
    assert findings and "safe YAML loader" in findings[0].kind


def test_every_committed_cassette_in_the_repository_is_clean() -> None:
    """All backends' cassettes (pos-spi, salesforce, ...): no secret may ever be committed."""
    cassettes = [
        p
        for p in REPO.glob("**/cassettes/**/*.yaml")
        if not {".venv", ".nox", ".git"} & set(p.relative_to(REPO).parts)
    ]
    assert cassettes, f"no cassettes under {REPO}: the scan would prove nothing"
    findings = scan_tree(REPO)
    assert not findings, "secrets in committed cassettes:\n" + "\n".join(map(str, findings))
