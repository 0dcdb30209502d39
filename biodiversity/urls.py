"""Every route of the biodiversity API, under /api/v1/biodiversity/, in one namespace
(`biodiversity`): each slice's."""

from django.urls import path

from biodiversity.maps import api as maps
from biodiversity.projects import api as projects
from biodiversity.sightings import api as sightings
from biodiversity.taxa import api as taxa

app_name = "biodiversity"

urlpatterns = [
    path("taxa", taxa.TaxonListView.as_view(), name="taxa"),
    path("sightings", sightings.SightingListCreateView.as_view(), name="sightings"),
    path("sightings/<uuid:pk>", sightings.SightingDetailView.as_view(), name="sighting"),
    path(
        "sightings/<uuid:pk>/identifications",
        sightings.IdentificationCreateView.as_view(),
        name="sighting-identifications",
    ),
    path(
        "sightings/<uuid:pk>/verdicts",
        sightings.VerdictCreateView.as_view(),
        name="sighting-verdicts",
    ),
    path("sightings/<uuid:pk>/flags", sightings.FlagCreateView.as_view(), name="sighting-flags"),
    path(
        "sightings/<uuid:pk>/photos/<int:position>",
        sightings.SightingPhotoView.as_view(),
        name="sighting-photo",
    ),
    path(
        "sightings/<uuid:pk>/photos/<int:position>/thumbnail",
        sightings.SightingThumbnailView.as_view(),
        name="sighting-thumbnail",
    ),
    path("projects/<slug:slug>", projects.ProjectDetailView.as_view(), name="project"),
    path("map", maps.MapView.as_view(), name="map"),
    path("export/dwc.csv", maps.DarwinCoreCsvView.as_view(), name="dwc-csv"),
    path("export/dwc-a.zip", maps.DarwinCoreArchiveView.as_view(), name="dwc-archive"),
]
