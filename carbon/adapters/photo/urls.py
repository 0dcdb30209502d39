"""Routes of the photo slice, included under /api/v1/ by carbon.api.urls."""

from django.urls import path

from carbon.adapters.photo import api

urlpatterns = [
    path("claims/<uuid:pk>/photo", api.ClaimPhotoView.as_view(), name="claim-photo"),
    path(
        "claims/<uuid:pk>/thumbnail",
        api.ClaimPhotoThumbnailView.as_view(),
        name="claim-photo-thumbnail",
    ),
]
