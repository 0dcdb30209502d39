"""Routes of the payments slice, under /api/v1/ (namespace `rewards`)."""

from django.urls import path

from rewards.payments import api

urlpatterns = [
    path("payments/stripe/webhook", api.StripeWebhookView.as_view(), name="stripe-webhook"),
]
