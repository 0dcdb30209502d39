"""URL routes of the photos API (included under /api/v1/)."""

from django.urls import path

from carbon.api import photos

urlpatterns = [
    path("claims/<uuid:pk>/photo", photos.ClaimPhotoView.as_view(), name="claim-photo"),
    path(
        "claims/<uuid:pk>/thumbnail",
        photos.ClaimPhotoThumbnailView.as_view(),
        name="claim-photo-thumbnail",
    ),
]
