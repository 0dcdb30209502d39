"""The product's routes plus /bench/bare: a plain Django view (the same server, ASGI
handler and middleware, no database, no DRF), the baseline of bench/http_serving.py."""

from django.http import JsonResponse
from django.urls import path

from config.urls import urlpatterns as product


def bare(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), *product]
