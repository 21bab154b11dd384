"""URLs of the backtests (mounted at ``/backtests/``)."""

from django.urls import path

from backtest import views

app_name = "backtest"

urlpatterns = [
    path("", views.backtest_list, name="list"),
    path("new/", views.backtest_new, name="new"),
    path("<int:run_id>/", views.backtest_detail, name="detail"),
    path("<int:run_id>/progress.json", views.backtest_progress, name="progress"),
    path("<int:run_id>/actions.csv", views.backtest_actions_csv, name="actions-csv"),
    path("<int:run_id>/again/", views.backtest_rerun, name="rerun"),
    path("<int:run_id>/delete/", views.backtest_delete, name="delete"),
]
