"""Routes of the vouchers slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.vouchers import api

urlpatterns = [
    path("rewards/offers", api.OfferListView.as_view(), name="offers"),
    path("rewards/redemptions", api.RedemptionView.as_view(), name="redemptions"),
    path("rewards/vouchers", api.VoucherListView.as_view(), name="vouchers"),
    path(
        "rewards/vouchers/<uuid:pk>/cancel", api.VoucherCancelView.as_view(), name="voucher-cancel"
    ),
    path(
        "rewards/vouchers/<uuid:pk>/certificate",
        api.VoucherCertificateView.as_view(),
        name="voucher-certificate",
    ),
]
