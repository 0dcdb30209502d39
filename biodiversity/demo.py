"""Demo data for `manage.py seed_demo`: the Wuhan checklist, an institution with a member
and a survey project (the demo residents volunteer), and a few hundred sightings across the
city, some of threatened species (obscured). Bulk-written, seconds; idempotent."""

from __future__ import annotations

import io
import random
import uuid
from datetime import timedelta
from pathlib import Path

from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from biodiversity.institutions.models import Institution, ProjectMember, SurveyProject
from biodiversity.institutions.services import institution_member_add, project_member_add
from biodiversity.maps.grid import map_grid_rebuild
from biodiversity.projects.boards import project_boards_rebuild
from biodiversity.sightings.grading import community_taxon
from biodiversity.sightings.models import (
    Flag,
    Identification,
    QualityGrade,
    Sighting,
    SightingPhoto,
)
from biodiversity.sightings.privacy import cell_accuracy_m, obscured_point
from biodiversity.taxa.models import Rank, Taxon
from carbon.models import District, User

CHECKLIST = Path(__file__).resolve().parent / "taxa" / "data" / "wuhan_checklist.csv"
EXPERT_EMAIL = "expert@demo.carbon.city"
EXPERT_PASSWORD = "survey-demo-2026"
VOLUNTEERS = ["alice@demo.carbon.city", "bo@demo.carbon.city", "chen@demo.carbon.city"]
SIGHTINGS = 300
NAMESPACE = uuid.UUID("0b7f3c1e-8a52-4d0c-9a51-6de7a1b3c2f4")
# East Lake (东湖) and its shores: the survey's area.
EAST_LAKE = (114.36, 30.52, 114.44, 30.59)


def seed(*, stdout) -> None:
    call_command("taxa_import", str(CHECKLIST), stdout=io.StringIO())
    institution, _ = Institution.objects.get_or_create(
        name="Jianghan Biodiversity Institute", defaults={"chinese_name": "江汉生物多样性研究所"}
    )
    expert = User.objects.filter(email=EXPERT_EMAIL).first()
    if expert is None:
        expert = User.objects.create_user(
            EXPERT_EMAIL, EXPERT_PASSWORD, display_name="Dr. Liu (institution)"
        )
        stdout.write(f"institution member {EXPERT_EMAIL} / {EXPERT_PASSWORD}")
    institution_member_add(institution=institution, user=expert)
    now = timezone.now()
    project, _ = SurveyProject.objects.get_or_create(
        slug="east-lake-bioblitz",
        defaults={
            "institution": institution,
            "name": "东湖生物快查 East Lake BioBlitz",
            "description": "A survey of East Lake's shores by the institute and volunteers.",
            "area": MultiPolygon(Polygon.from_bbox(EAST_LAKE), srid=4326),
            "starts_at": now - timedelta(days=120),
            "ends_at": now + timedelta(days=60),
            "members_only": True,
            "grants_true_coordinates": True,
        },
    )
    project_member_add(project=project, user=expert, role=ProjectMember.Role.MEMBER)
    observers = [expert]
    for email in VOLUNTEERS:
        user = User.objects.filter(email=email).first()
        if user is not None:
            project_member_add(project=project, user=user)
            observers.append(user)
    first_key = uuid.uuid5(NAMESPACE, "0")
    if not Sighting.objects.filter(client_uuid=first_key).exists():
        _sightings(observers=observers, expert=expert, now=now)
        stdout.write(f"biodiversity: {SIGHTINGS} demo sightings")
    map_grid_rebuild()  # the map's clusters, without waiting for the minute's rebuild


@transaction.atomic
def _sightings(*, observers: list[User], expert: User, now) -> None:
    rng = random.Random(20261203)
    species = list(Taxon.objects.filter(rank=Rank.SPECIES))
    threatened = [t for t in species if t.is_threatened]
    common = [t for t in species if not t.is_threatened]
    threatened_ids = set(Taxon.objects.threatened().values_list("pk", flat=True))
    districts = [d for d in District.objects.exclude(boundary__isnull=True)]
    sightings, photos, idents = [], [], []
    for i in range(SIGHTINGS):
        taxon = rng.choice(threatened if i % 8 == 0 else common)
        if i % 3 == 0:  # a third around East Lake, for the survey
            w, s, e, n = EAST_LAKE
            district = None
        else:
            district = rng.choice(districts)
            w, s, e, n = district.boundary.extent
        point = Point(round(rng.uniform(w, e), 6), round(rng.uniform(s, n), 6), srid=4326)
        obscure = taxon.pk in threatened_ids or bool(set(taxon.lineage_ids) & threatened_ids)
        obscure = obscure or i % 25 == 0  # now and then the observer chose to
        accuracy = rng.choice([5, 10, 15, 30, 65])
        observer = observers[i % len(observers)]
        taxa = [taxon]
        if i % 5 != 4:  # most get a second, agreeing identification
            taxa.append(taxon)
        agreed = community_taxon(taxa=taxa)
        sighting = Sighting(
            observer=observer,
            client_uuid=uuid.uuid5(NAMESPACE, str(i)),
            taxon_guess=taxon,
            community_taxon=agreed,
            location=point,
            accuracy_m=accuracy,
            public_location=obscured_point(point, rng=rng) if obscure else point,
            public_accuracy_m=max(accuracy, cell_accuracy_m(point)) if obscure else accuracy,
            obscured=obscure,
            observer_obscured=i % 25 == 0,
            district=district,
            observed_at=now - timedelta(minutes=rng.randint(60, 90 * 24 * 60)),
            count=rng.choice([1, 1, 1, 2, 3, 5]),
            quality_grade=QualityGrade.RESEARCH if agreed else QualityGrade.NEEDS_ID,
        )
        sightings.append(sighting)
        idents.append(Identification(sighting=sighting, user=observer, taxon=taxon))
        if len(taxa) == 2:
            second = expert if observer != expert else observers[1 % len(observers)]
            idents.append(Identification(sighting=sighting, user=second, taxon=taxon))
    Sighting.objects.bulk_create(sightings, batch_size=500)
    for i, sighting in enumerate(sightings):
        image, thumb = _picture(rng, i)
        base = f"sightings/{sighting.pk}/1-"
        photos.append(
            SightingPhoto(
                sighting=sighting,
                position=1,
                image=default_storage.save(base + "photo.jpg", ContentFile(image)),
                thumbnail=default_storage.save(base + "thumbnail.jpg", ContentFile(thumb)),
                width=320,
                height=240,
                original_format="JPEG",
                sha256=uuid.uuid5(NAMESPACE, f"photo-{i}").hex * 2,
                phash=f"{rng.getrandbits(64):016x}",
            )
        )
    SightingPhoto.objects.bulk_create(photos, batch_size=500)
    Identification.objects.bulk_create(idents, batch_size=500)
    # One report waiting in the moderation queue.
    Flag.objects.create(sighting=sightings[7], user=observers[-1], reason=Flag.Reason.INAPPROPRIATE)
    # Written set-based, without the signals that keep the survey boards live: build them.
    project_boards_rebuild()


def _picture(rng: random.Random, i: int) -> tuple[bytes, bytes]:
    """A small placeholder picture (a coloured field with a shape): demo photos need no
    camera, and the real pipeline is exercised by the tests."""
    img = Image.new("RGB", (320, 240), (rng.randint(60, 200), rng.randint(90, 200), 90))
    draw = ImageDraw.Draw(img)
    x, y = rng.randint(40, 200), rng.randint(40, 140)
    draw.ellipse((x, y, x + 80, y + 60), fill=(rng.randint(0, 255), 120, rng.randint(0, 255)))
    out, thumb = io.BytesIO(), io.BytesIO()
    img.save(out, "JPEG", quality=80)
    img.resize((160, 120)).save(thumb, "JPEG", quality=80)
    return out.getvalue(), thumb.getvalue()
