"""Backtest pages. Thin: parse input, call one service, render. Every lookup is owner-scoped (404 otherwise)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from automations.models import Automation
from backtest.forms import BacktestForm, initial_for
from backtest.history import datetime_of
from backtest.models import BacktestRun
from backtest.report import ACTION_COLUMNS
from backtest.services import backtest_create, backtest_is_stalled, backtest_restart
from config.params import parse_id

ACTIONS_SHOWN = 300


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _run(request: HttpRequest, run_id: int) -> BacktestRun:
    return get_object_or_404(BacktestRun.objects.defer("history"), pk=run_id, owner=_user(request))


@login_required
@require_GET
def backtest_list(request: HttpRequest) -> HttpResponse:
    runs = BacktestRun.objects.filter(owner=_user(request)).defer("history", "chart")[:100]
    return render(request, "backtest/list.html", {"runs": runs})


@login_required
@require_http_methods(["GET", "POST"])
def backtest_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    automation = None
    raw = request.GET.get("automation")
    if raw:
        automation_id = parse_id(raw)
        if automation_id is None:
            return HttpResponse("Unknown automation.", status=404)
        automation = get_object_or_404(
            Automation.objects.select_related("account"), pk=automation_id, account__owner=user
        )
    if request.method == "POST":
        form = BacktestForm(request.POST, request.FILES, user=user)
        if form.is_valid() and form.run_settings is not None:
            data = form.cleaned_data
            run = backtest_create(
                owner=user,
                name=data["name"],
                source=data["source"],
                source_params=form.source_params(),
                configs=form.configs,
                run_settings=form.run_settings,
                account=data.get("account"),
                automation=automation,
                history=form.history,
            )
            return redirect("backtest:detail", run_id=run.pk)
    else:
        form = BacktestForm(user=user, initial=initial_for(automation, user))
    return render(request, "backtest/new.html", {"form": form, "automation": automation})


@login_required
@require_GET
def backtest_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    results = list(run.results.all()) if run.status == BacktestRun.Status.DONE else []
    columns: list[dict[str, Any]] = [
        {"label": r.label, "kind": r.kind, "summary": r.summary, "baseline": r.position == 0} for r in results
    ]
    chart: dict[str, Any] = {
        "price": run.chart.get("price", {}),
        "configs": [{"label": r.label, **r.chart} for r in results],
    }
    tables = [
        {
            "label": r.label,
            "position": r.position,
            "actions": [{**a, "when": datetime_of(int(a["time_ms"]))} for a in r.actions[:ACTIONS_SHOWN]],
            "total": len(r.actions),
        }
        for r in results
    ]
    context = {
        "run": run,
        "columns": columns,
        "chart": chart if results else None,
        "tables": tables,
        "stalled": backtest_is_stalled(run),
        "progress_url": reverse("backtest:progress", args=[run.pk]),
    }
    return render(request, "backtest/detail.html", context)


@login_required
@require_GET
def backtest_progress(request: HttpRequest, run_id: int) -> JsonResponse:
    run = _run(request, run_id)
    return JsonResponse(
        {
            "status": run.status,
            "progress": run.progress,
            "message": run.message,
            "finished": run.finished,
            "stalled": backtest_is_stalled(run),
        }
    )


@login_required
@require_GET
def backtest_actions_csv(request: HttpRequest, run_id: int) -> HttpResponse:
    import csv

    run = _run(request, run_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-actions.csv"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(ACTION_COLUMNS)
    for result in run.results.all():
        for a in result.actions:
            writer.writerow(
                [result.label, a["time_ms"], a["price"], a["source"], a["kind"], a["trade_id"], a["value"],
                 a["outcome"], a["fill"] or "", a["reason"]]
            )  # fmt: skip
    return response


@login_required
@require_POST
def backtest_rerun(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(BacktestRun, pk=run_id, owner=_user(request))
    return redirect("backtest:detail", run_id=backtest_restart(run=run).pk)


@login_required
@require_POST
def backtest_delete(request: HttpRequest, run_id: int) -> HttpResponse:
    _run(request, run_id).delete()
    return redirect("backtest:list")
