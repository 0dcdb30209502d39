"""URL routes of appeals (included under /api/v1/)."""

from django.urls import path

from carbon.api import appeals

urlpatterns = [
    path("claims/<uuid:pk>/appeal", appeals.ClaimAppealView.as_view(), name="claim-appeal"),
    path("appeals", appeals.AppealListCreateView.as_view(), name="appeals"),
]
