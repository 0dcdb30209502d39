"""Routes of the offers slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.offers import api

urlpatterns = [
    path("rewards/offers/<int:pk>/image", api.OfferImageView.as_view(), name="offer-image"),
]
