"""Items 6 and 7: production refuses unsafe values, `check --deploy` is clean, secrets in URLs are masked on error
pages and in logs, and the pages carry CSP, HSTS (behind the TLS proxy) and no-store."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from django.views.debug import technical_500_response

from accounts.models import User
from config.redaction import MASK, RedactingFormatter, RedactingJsonFormatter, redact

ROOT = Path(__file__).resolve().parents[2]
DB_PASSWORD = "pg-Sup3rSecret-pw"
REDIS_PASSWORD = "redis-Sup3rSecret-pw"
PRODUCTION = {
    "DATABASE_URL": f"postgres://axisor:{DB_PASSWORD}@db.internal:5432/axisor",
    "REDIS_URL": f"redis://:{REDIS_PASSWORD}@redis.internal:6379/0",
    "SECRET_KEY": "k9#Qv2!pLx7@Zr4$Wm8^Tn1&Yb6*Hc3(Jd5)Fg0_Se-Ua+Vi=Ok",
    "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
    "ALLOWED_HOSTS": "axisor.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}
_DROP = {"DEBUG", "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SIMULATOR_CONTROL_TOKEN", *PRODUCTION}


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in _DROP}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_item7_check_deploy_is_clean_in_production_mode() -> None:
    result = _manage(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "W004" not in result.stdout + result.stderr
    assert "W008" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG=true is refused in production mode"),
        ({"DEBUG": "true", "ALLOWED_HOSTS": "*"}, "DEBUG=true is refused"),
        ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS"),
        ({"SECURE_PROXY_SSL_HEADER": ""}, "SECURE_PROXY_SSL_HEADER is not set"),
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}, "must be a header name"),
    ],
)
def test_item6_7_production_refuses_unsafe_values(override: dict[str, str], message: str) -> None:
    result = _manage({**PRODUCTION, **override}, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
    assert DB_PASSWORD not in result.stderr
    assert REDIS_PASSWORD not in result.stderr


def test_plain_http_production_without_secure_cookies_needs_no_proxy_header() -> None:
    result = _manage({**PRODUCTION, "SECURE_PROXY_SSL_HEADER": "", "SECURE_COOKIES": "false"}, "check")
    assert result.returncode == 0, result.stderr


def _fail_with_the_url(connection_url: str) -> None:
    """Raise with the URL in the message and in a frame variable, as a failing driver would."""
    raise RuntimeError(f"could not connect to {connection_url}")


@override_settings(
    DEBUG=True,
    DATABASE_URL=PRODUCTION["DATABASE_URL"],
    REDIS_URL=PRODUCTION["REDIS_URL"],
    CELERY_BROKER_URL=PRODUCTION["REDIS_URL"],
    CHANNEL_LAYERS={"default": {"BACKEND": "x", "CONFIG": {"hosts": [PRODUCTION["REDIS_URL"]]}}},
    SOME_URL_SETTING=f"amqp://guest:{DB_PASSWORD}@mq.internal//",
)
def test_item6_debug_page_and_error_text_mask_service_passwords() -> None:
    request = RequestFactory().get("/boom", {"q": PRODUCTION["REDIS_URL"]})
    try:
        _fail_with_the_url(PRODUCTION["DATABASE_URL"])
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    html = response.content.decode()
    assert DB_PASSWORD not in html
    assert REDIS_PASSWORD not in html
    assert MASK in html
    assert "db.internal" in html  # the rest of the URL is still there to debug with


def test_item6_log_lines_mask_service_passwords_plain_and_json(caplog) -> None:
    logger = logging.getLogger("tests.redaction")
    record = logger.makeRecord(
        "tests.redaction", logging.ERROR, __file__, 1, "broker %s down", (PRODUCTION["REDIS_URL"],), None
    )
    try:
        _fail_with_the_url(PRODUCTION["DATABASE_URL"])
    except RuntimeError:
        record.exc_info = sys.exc_info()
    plain = RedactingFormatter("%(levelname)s %(message)s").format(record)
    record.exc_text = None
    as_json = RedactingJsonFormatter("%(levelname)s %(message)s").format(record)
    for line in (plain, as_json):
        assert DB_PASSWORD not in line
        assert REDIS_PASSWORD not in line
        assert MASK in line
    assert json.loads(as_json)["message"].startswith("broker redis://:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:p4ssword@h:5432/d", f"postgres://u:{MASK}@h:5432/d"),
        ("redis://:pw-with-@sign@h:6379/0", f"redis://:{MASK}@h:6379/0"),
        ("http://host:8000/path@x", "http://host:8000/path@x"),
        ("no url here", "no url here"),
    ],
)
def test_redact_masks_only_url_passwords(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_logging_is_configured_with_the_redacting_formatters() -> None:
    formatters: Any = settings.LOGGING["formatters"]
    assert formatters["plain"]["()"] == "config.redaction.RedactingFormatter"
    assert formatters["json"]["()"] == "config.redaction.RedactingJsonFormatter"
    assert settings.DEFAULT_EXCEPTION_REPORTER == "config.redaction.RedactingExceptionReporter"


def test_json_logs_are_an_option(tmp_path: Path) -> None:
    code = "import logging, django; django.setup(); logging.getLogger('probe').warning('hello %s', 'world')"
    clean = {k: v for k, v in os.environ.items() if k not in _DROP}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings_test", "LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    line = next(x for x in result.stderr.splitlines() if "hello" in x)
    assert json.loads(line)["message"] == "hello world"
    assert json.loads(line)["level"] == "WARNING"


# --- item 7: headers ----------------------------------------------------------------------------------------------


@pytest.fixture
def alice_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_item7_pages_send_a_csp_without_inline_code(alice_client: Client) -> None:
    csp = alice_client.get("/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    # stylesheets from this origin, plus exactly the chart library's one attribution <style>, by its hash
    assert directives["style-src"] == f"'self' {settings.CHART_ATTRIBUTION_STYLE_HASH}"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp


def test_item7_the_style_hash_is_the_vendored_chart_librarys_attribution_style() -> None:
    """The hash in the CSP is recomputed from the vendored file: upgrading the library without updating it fails
    here, not as a silently blocked style in the browser."""
    source = ROOT / "static/vendor/lightweight-charts/lightweight-charts.standalone.production.js"
    styles = re.findall(r'createElement\("style"\),this\.\w+\.innerText="([^"]*)"', source.read_text())
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" == settings.CHART_ATTRIBUTION_STYLE_HASH


def test_item7_logged_in_pages_are_not_stored_by_the_browser(alice_client: Client) -> None:
    for path in ("/", "/realtime/positions/", "/accounts/exchange/", "/automations/"):
        cache_control = alice_client.get(path).headers["Cache-Control"]
        assert "no-store" in cache_control, path
        assert "private" in cache_control, path


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=31_536_000)
def test_item7_behind_the_tls_proxy_requests_are_secure_and_get_hsts(alice_client: Client, make_account: Any) -> None:  # noqa: ANN401
    response = alice_client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    account = make_account(User.objects.get(username="alice"))
    redirect = alice_client.post(
        f"/accounts/exchange/{account.pk}/activate/",
        {"next": "http://testserver/automations/"},
        HTTP_X_FORWARDED_PROTO="https",
    )
    assert redirect["Location"] == "/accounts/exchange/"  # a downgrade to http is refused (require_https)


PAGES = [
    "/",
    "/realtime/positions/",
    "/accounts/exchange/",
    "/accounts/exchange/new/",
    "/accounts/two-factor/",
    "/automations/",
    "/automations/new/",
    "/automations/new/margin_guard/",
    "/automations/new/auto_entry/",
    "/automations/log/",
]


def test_item7_pages_satisfy_the_csp_no_inline_script_or_style(alice_client: Client, make_account: Any) -> None:  # noqa: ANN401
    make_account(User.objects.get(username="alice"))
    for path in [*PAGES, "/accounts/login/"]:
        html = alice_client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), path
        assert "<style" not in html, path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
