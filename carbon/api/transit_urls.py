"""URL routes of the transit API (included under /api/v1/)."""

from django.urls import path

from carbon.api import transit

app_name = "transit"

urlpatterns = [
    path("me/transit-cards", transit.TransitCardListView.as_view(), name="cards"),
    path("me/transit-cards/<int:pk>", transit.TransitCardDetailView.as_view(), name="card"),
    path("partners/transit/taps", transit.TransitTapsView.as_view(), name="taps"),
]
