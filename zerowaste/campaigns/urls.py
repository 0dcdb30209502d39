"""Routes of the campaigns slice, under /api/v1/ (namespace `zerowaste`)."""

from django.urls import path

from zerowaste.campaigns import api

urlpatterns = [
    path("zerowaste/campaigns", api.CampaignListView.as_view(), name="campaigns"),
    path("zerowaste/campaigns/<int:pk>", api.CampaignDetailView.as_view(), name="campaign"),
    path("zerowaste/campaigns/<int:pk>/votes", api.VoteView.as_view(), name="campaign-votes"),
]
