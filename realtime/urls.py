"""URLs of the realtime app (mounted at ``/realtime/``); the dashboard itself is ``/`` (``config.views.home``)."""

from django.urls import path

from realtime import views, views_chart, views_trades

app_name = "realtime"

urlpatterns = [
    path("positions/", views.positions, name="positions"),
    path("positions/<int:pk>/<slug:action>/", views_trades.trade_action, name="trade-action"),
    path("accounts/<int:account_id>/close-all/", views_trades.close_all, name="close-all"),
    path("ops/", views.operations, name="ops"),
    path("api/snapshot/", views.api_snapshot, name="api-snapshot"),
    path("api/chart/", views_chart.api_chart, name="api-chart"),
    path("api/accounts/<int:account_id>/snapshot/", views.api_account_snapshot, name="api-account-snapshot"),
]
