"""URLs of the automations app (mounted at ``/automations/``)."""

from django.urls import path

from automations import views

app_name = "automations"

urlpatterns = [
    path("", views.automation_list, name="list"),
    path("new/", views.automation_choose_kind, name="choose-kind"),
    path("new/<slug:kind>/", views.automation_create, name="create"),
    path("describe/<slug:kind>/", views.automation_describe, name="describe"),
    path("<int:automation_id>/edit/", views.automation_edit, name="edit"),
    path("<int:automation_id>/pause/", views.automation_pause, name="pause"),
    path("<int:automation_id>/resume/", views.automation_resume, name="resume"),
    path("<int:automation_id>/delete/", views.automation_delete, name="delete"),
    path("<int:automation_id>/preview/", views.automation_preview, name="preview"),
    path("log/", views.audit_log, name="log"),
    path("account/<int:account_id>/", views.account_detail, name="account"),
    path("account/<int:account_id>/kill-switch/", views.account_kill_switch, name="account-kill-switch"),
    path("account/<int:account_id>/external/", views.account_manage_external, name="account-external"),
    path("global-kill-switch/", views.global_kill_switch, name="global-kill-switch"),
]
