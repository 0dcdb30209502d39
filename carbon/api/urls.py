"""Every route of the carbon core's API, under /api/v1/, in one namespace (`carbon`): the
core's own, then each adapter slice's."""

from django.urls import include, path

from carbon.api import appeals, views

app_name = "carbon"

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="register"),
    path("auth/token", views.LoginView.as_view(), name="token"),
    path("auth/token/refresh", views.RefreshView.as_view(), name="token-refresh"),
    path("me", views.MeView.as_view(), name="me"),
    path("me/export", views.MeExportView.as_view(), name="me-export"),
    path("me/consents", views.ConsentListView.as_view(), name="consents"),
    path("me/consents/<str:scope>", views.ConsentView.as_view(), name="consent"),
    path("behaviours", views.BehaviourListView.as_view(), name="behaviours"),
    path("claims", views.ClaimListCreateView.as_view(), name="claims"),
    path("claims/<uuid:pk>", views.ClaimDetailView.as_view(), name="claim"),
    path("claims/<uuid:pk>/appeal", appeals.ClaimAppealView.as_view(), name="claim-appeal"),
    path("appeals", appeals.AppealListCreateView.as_view(), name="appeals"),
    path("ledger", views.LedgerView.as_view(), name="ledger"),
    path("partners/whoami", views.PartnerWhoAmIView.as_view(), name="partner-whoami"),
    path("", include("carbon.adapters.transit.urls")),
    path("", include("carbon.adapters.photo.urls")),
    path("", include("carbon.adapters.partner_events.urls")),
    path("", include("carbon.leaderboards.urls")),
]
