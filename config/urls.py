from django.contrib import admin
from django.urls import include, path

from omniman.web import health, language, pickup, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    # The header's language switcher (Django's set_language, plus the user's stored choice).
    path("i18n/setlang/", language.set_language, name="set_language"),
    path("pos/", include("omniman.web.urls")),
    path("kitchen/", include("omniman.web.kitchen_urls")),
    # The customer pickup screen (a TV): numbers only, display role or display token.
    path("pickup/", pickup.pickup_view, name="pickup"),
    path("api/", include("omniman.api.urls")),
]

# A database outage met outside a view answers 503 too (omniman.web.outage).
handler500 = "omniman.web.outage.server_error"
