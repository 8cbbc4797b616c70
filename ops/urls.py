from django.urls import path

from ops import api, prometheus, views

urlpatterns = [
    path("ops/", views.dashboard, name="ops-dashboard"),
    path("ops/accounts/<int:account_id>/", views.account_page, name="ops-account"),
    path("ops/api/accounts", api.AccountsView.as_view(), name="ops-api-accounts"),
    path("ops/api/accounts/<int:account_id>", api.AccountView.as_view(), name="ops-api-account"),
    path("metrics", prometheus.metrics, name="metrics"),
]
