"""Every route of rewards, under /api/v1/ in one namespace (`rewards`): residents' under
rewards/, merchant staff's under merchant/. Each slice has its own routes."""

from django.urls import include, path

app_name = "rewards"

urlpatterns = [
    path("", include("rewards.offers.urls")),
    path("", include("rewards.vouchers.urls")),
    path("", include("rewards.merchants.urls")),
    path("", include("rewards.payments.urls")),
    path("", include("rewards.sponsorships.urls")),
    path("", include("rewards.pool.urls")),
    path("", include("rewards.settlements.urls")),
]
