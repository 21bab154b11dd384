"""OverloadMiddleware: an exhausted connection pool is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client
from psycopg_pool import PoolTimeout

from accounts.models import User
from realtime import views


def _exhausted(**kwargs: object) -> None:
    cause = PoolTimeout("couldn't get a connection after 10.00 sec")
    raise OperationalError(str(cause)) from cause


def _broken(**kwargs: object) -> None:
    raise OperationalError("server closed the connection unexpectedly")


@pytest.fixture
def client_alice(alice: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


def test_pool_exhaustion_is_503_json_with_retry_after(client_alice: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "fallback_snapshot", _exhausted)
    response = client_alice.get("/realtime/api/snapshot/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"error": "busy", "retry_after": 5}


def test_pool_exhaustion_on_a_page_is_a_plain_503(client_alice: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "build_snapshot", _exhausted)
    response = client_alice.get("/")
    assert response.status_code == 503
    assert b"busy" in response.content


def test_other_database_errors_are_not_disguised(client_alice: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "fallback_snapshot", _broken)
    assert client_alice.get("/realtime/api/snapshot/").status_code == 500
