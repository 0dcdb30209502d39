from django.urls import path, re_path

from carbon.consumers import BalanceConsumer
from carbon.leaderboards.consumers import LeaderboardConsumer

websocket_urlpatterns = [
    path("ws/v1/balance", BalanceConsumer.as_asgi()),
    # The spelling (ws/leaderboards/{key}/) and the versioned one of the balance.
    re_path(r"^ws/(?:v1/)?leaderboards/(?P<key>[^/]{1,120})/?$", LeaderboardConsumer.as_asgi()),
]
