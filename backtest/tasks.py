"""Celery task of the backtests: thin, ids only. The default queue (never the protective one), at low priority."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task

from automations.tasks import DEFAULT_QUEUE

# Redis orders priorities 0 (first) … 9 (last); the memory:// transport of the embedded default ignores them.
LOW_PRIORITY = 9


def enqueue(task: Task[[int, int], None], run_id: int, step: int) -> None:
    task.apply_async(args=(run_id, step), queue=DEFAULT_QUEUE, priority=LOW_PRIORITY)


# Not acks_late: a step may run longer than the broker's visibility timeout, and a second delivery would only
# repeat work (the claim makes it a no-op). A step lost with its worker leaves the run "stalled" (the page offers
# to start it again).
@shared_task(acks_late=False, max_retries=0, soft_time_limit=1500, time_limit=1560)
def backtest_run_step_task(run_id: int, step: int) -> None:
    """One step of a backtest run (``backtest.services.backtest_run_step``); queues the next one."""
    from backtest.services import backtest_run_step

    following = backtest_run_step(run_id=run_id, step=step)
    if following is not None:
        enqueue(backtest_run_step_task, run_id, following)
