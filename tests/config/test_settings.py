"""Both ways to run: the embedded default needs nothing set; production refuses to start without its secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "FIELD_ENCRYPTION_KEYS",
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "ALLOWED_HOSTS",
            "SECURE_COOKIES",
            "SECURE_SSL_REDIRECT",
            "SECURE_PROXY_SSL_HEADER",
        }
    }
    clean.update(env)
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
        "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'broker': settings.CELERY_BROKER_URL, "
        "'debug': settings.DEBUG, 'nkeys': len(settings.FIELD_ENCRYPTION_KEYS)}))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_embedded_default_needs_nothing_and_generates_local_secrets(tmp_path):
    secrets_file = tmp_path / "local_secrets.json"
    result = _load_settings({"AXISOR_LOCAL_SECRETS_FILE": str(secrets_file), "SQLITE_PATH": str(tmp_path / "db")})
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {
        "engine": "django.db.backends.sqlite3",
        "layer": "channels.layers.InMemoryChannelLayer",
        "broker": "memory://",
        "debug": False,
        "nkeys": 1,
    }
    assert "Generated a local SECRET_KEY" in result.stderr
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    # a second start reuses the file silently
    again = _load_settings({"AXISOR_LOCAL_SECRETS_FILE": str(secrets_file), "SQLITE_PATH": str(tmp_path / "db")})
    assert again.returncode == 0
    assert "Generated" not in again.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_production_without_a_mandatory_secret_refuses_to_start(missing, tmp_path):
    env = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
        "AXISOR_LOCAL_SECRETS_FILE": str(tmp_path / "never.json"),
    }
    del env[missing]
    result = _load_settings(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} is not set" in result.stderr
    assert not (tmp_path / "never.json").exists()


def test_production_settings_use_postgres_redis_and_celery_on_redis():
    result = _load_settings(
        {
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "SECRET_KEY": "x" * 50,
            "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        }
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["layer"] == "config.channel_layer.BoundedRedisChannelLayer"
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"


def test_wildcard_allowed_hosts_refused_without_debug(tmp_path):
    result = _load_settings({"ALLOWED_HOSTS": "*", "AXISOR_LOCAL_SECRETS_FILE": str(tmp_path / "s.json")})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must not contain '*'" in result.stderr


def test_env_example_documents_every_variable_the_settings_read():
    import re

    settings_text = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r'env\.(?:str|bool|int|float|list)\("([A-Z_]+)"', settings_text))
    read |= set(re.findall(r'_mandatory_secret\("([A-Z_]+)"', settings_text))
    documented = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert read - documented == set()
