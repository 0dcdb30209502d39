"""Every API route of zerowaste, under /api/v1/ in one namespace (`zerowaste`); each slice
has its own routes. The public notice board's pages are zerowaste.board.urls."""

from django.urls import include, path

app_name = "zerowaste"

urlpatterns = [
    path("", include("zerowaste.cells.urls")),
    path("", include("zerowaste.campaigns.urls")),
]
