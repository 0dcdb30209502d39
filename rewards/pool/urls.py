"""Routes of the pool slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.pool import api

urlpatterns = [
    path("rewards/pool-purchases", api.PoolPurchasesView.as_view(), name="pool-purchases"),
    path(
        "rewards/pool-purchases/<int:pk>",
        api.PoolPurchaseDetailView.as_view(),
        name="pool-purchase-detail",
    ),
    path(
        "rewards/pool-purchases/<int:pk>/certificate",
        api.PoolCertificateView.as_view(),
        name="pool-purchase-certificate",
    ),
]
