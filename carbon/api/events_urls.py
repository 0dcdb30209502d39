"""URL routes of partner events and partner links (included under /api/v1/)."""

from django.urls import path

from carbon.api import events

urlpatterns = [
    path("partners", events.PartnerListView.as_view(), name="partners"),
    path("partners/events", events.PartnerEventsView.as_view(), name="partner-events"),
    path("me/partner-links", events.PartnerLinksView.as_view(), name="partner-links"),
    path("me/partner-links/<int:pk>", events.PartnerLinkView.as_view(), name="partner-link"),
]
