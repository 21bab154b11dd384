"""Celery workers keep their database pool (``CELERY_DB_REUSE_MAX``) and start each task by handing back broken or
aged connections, except for a task applied eagerly inside its caller's transaction (``config.celery``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings

from config import celery as celery_config


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    calls: list[bool] = []
    monkeypatch.setattr("django.db.close_old_connections", lambda: calls.append(True))
    return calls


def _task(eager: bool) -> Any:  # noqa: ANN401 - a stand-in for a Celery task
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_a_worker_task_starts_by_handing_back_old_connections(closes: list[bool]) -> None:
    celery_config._connections_back_to_the_pool(task=_task(eager=False))  # noqa: SLF001
    assert closes == [True]


def test_an_eager_task_keeps_its_callers_connection(closes: list[bool]) -> None:
    celery_config._connections_back_to_the_pool(task=_task(eager=True))  # noqa: SLF001
    assert closes == []


def test_celerys_fixup_no_longer_closes_the_pool_around_every_task() -> None:
    assert celery_config.app.conf.get("CELERY_DB_REUSE_MAX") == settings.CELERY_DB_REUSE_MAX >= 100
