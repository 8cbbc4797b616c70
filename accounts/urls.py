from django.urls import include, path

from accounts.views import connections, login

urlpatterns = [
    path("login", login.LoginView.as_view(), name="login"),
    path("logout", login.LogoutView.as_view(), name="logout"),
    path("connections", connections.connection_list, name="connections"),
    path("connections/<int:pk>/revoke", connections.connection_revoke, name="connection-revoke"),
    path("", include("accounts.oauth_urls")),
]
