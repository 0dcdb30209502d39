"""The leaderboards' routes, included under /api/v1/ in the core's namespace."""

from django.urls import path

from carbon.leaderboards import api

urlpatterns = [
    path("leaderboards", api.BoardListView.as_view(), name="leaderboards"),
    path("leaderboards/<str:key>", api.BoardView.as_view(), name="leaderboard"),
]
