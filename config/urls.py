from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api/v1/", include("carbon.api.urls")),
]

handler400 = "carbon.api.errors.json_400"
handler403 = "carbon.api.errors.json_403"
handler404 = "carbon.api.errors.json_404"
handler500 = "carbon.api.errors.json_500"
