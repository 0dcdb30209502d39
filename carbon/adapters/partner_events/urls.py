"""Routes of the partner-events slice, included under /api/v1/ by carbon.api.urls."""

from django.urls import path

from carbon.adapters.partner_events import api

urlpatterns = [
    path("partners", api.PartnerListView.as_view(), name="partners"),
    path("partners/events", api.PartnerEventsView.as_view(), name="partner-events"),
    path("me/partner-links", api.PartnerLinksView.as_view(), name="partner-links"),
    path("me/partner-links/<int:pk>", api.PartnerLinkView.as_view(), name="partner-link"),
    path(
        "me/partner-links/<int:pk>/confirm",
        api.PartnerLinkConfirmView.as_view(),
        name="partner-link-confirm",
    ),
    path(
        "partners/links/confirm", api.PartnerLinkConfirmByPartnerView.as_view(), name="link-confirm"
    ),
    path("partners/links/code", api.PartnerLinkCodeView.as_view(), name="link-code"),
]
