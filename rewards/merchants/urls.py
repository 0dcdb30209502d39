"""Routes of the merchants slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.merchants import api

urlpatterns = [
    path("merchant/redemptions", api.MerchantRedemptionView.as_view(), name="merchant-redemptions"),
    path("merchant/summary", api.MerchantSummaryView.as_view(), name="merchant-summary"),
    path("merchant/staff", api.StaffInviteView.as_view(), name="merchant-staff"),
    path(
        "merchant/invitations/accept",
        api.InvitationAcceptView.as_view(),
        name="merchant-invitation-accept",
    ),
]
