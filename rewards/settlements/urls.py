"""Routes of the settlements slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.settlements import api

urlpatterns = [
    path(
        "merchant/settlements", api.MerchantSettlementsView.as_view(), name="merchant-settlements"
    ),
]
