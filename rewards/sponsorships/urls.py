"""Routes of the sponsorships slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.sponsorships import api

urlpatterns = [
    path("rewards/sponsorships", api.SponsorshipsView.as_view(), name="sponsorships"),
    path(
        "rewards/sponsorships/<int:pk>",
        api.SponsorshipDetailView.as_view(),
        name="sponsorship-detail",
    ),
]
