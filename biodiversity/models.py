"""The app's models, defined in its slices and gathered here so Django finds them."""

from biodiversity.institutions.models import (  # noqa: F401
    Institution,
    InstitutionMember,
    ProjectMember,
    SurveyProject,
)
from biodiversity.maps.models import MapGridCell  # noqa: F401
from biodiversity.sightings.models import (  # noqa: F401
    Flag,
    Identification,
    Sighting,
    SightingPhoto,
    SightingPhotoBand,
    TrueLocationAccess,
    Verdict,
)
from biodiversity.taxa.models import Taxon  # noqa: F401
