from django.urls import path

from carbon.consumers import BalanceConsumer

websocket_urlpatterns = [
    path("ws/v1/balance", BalanceConsumer.as_asgi()),
]
