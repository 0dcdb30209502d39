"""Routes of the transit slice, included under /api/v1/ by carbon.api.urls."""

from django.urls import path

from carbon.adapters.transit import api

urlpatterns = [
    path("me/transit-cards", api.TransitCardListView.as_view(), name="transit-cards"),
    path("me/transit-cards/<int:pk>", api.TransitCardDetailView.as_view(), name="transit-card"),
    path(
        "me/transit-cards/<int:pk>/confirm",
        api.TransitCardConfirmView.as_view(),
        name="transit-card-confirm",
    ),
    path("partners/transit/taps", api.TransitTapsView.as_view(), name="transit-taps"),
    path(
        "partners/transit/links/confirm",
        api.TransitLinkConfirmView.as_view(),
        name="transit-link-confirm",
    ),
    path(
        "partners/transit/links/code", api.TransitLinkCodeView.as_view(), name="transit-link-code"
    ),
]
