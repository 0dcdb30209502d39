from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from carbon.api.docs import SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
    # In the request's language (Accept-Language, or ?lang=).
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP allows no inline
    # script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("carbon.api.urls")),
    path("api/v1/", include("rewards.urls")),
    path("api/v1/rewards/", include("rewards.offsets.urls")),
    path("api/v1/biodiversity/", include("biodiversity.urls")),
    path("biodiversity/", include("biodiversity.pages")),
    path("api/v1/", include("zerowaste.urls")),
    path("zerowaste/", include("zerowaste.board.urls")),
]

handler400 = "carbon.api.errors.json_400"
handler403 = "carbon.api.errors.json_403"
handler404 = "carbon.api.errors.json_404"
handler500 = "carbon.api.errors.json_500"
