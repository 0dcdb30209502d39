"""Export and erasure of a person's biodiversity data, the checklist importer, and the demo
seeder (fast and idempotent)."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command

from biodiversity import demo
from biodiversity.institutions.models import InstitutionMember
from biodiversity.sightings.models import (
    Identification,
    Sighting,
    SightingPhoto,
    TrueLocationAccess,
)
from biodiversity.taxa.models import Rank, Taxon
from biodiversity.taxa.services import TaxaImportError, taxa_import
from carbon.models import User
from carbon.services.people import user_erase, user_export
from tests.biodiversity.conftest import post_sighting
from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_export_holds_true_points_and_exif_and_erasure_keeps_research_records_anonymous(
    observer, observer_api, taxa, expert, survey
):
    research = post_sighting(observer_api, taxa["Ciconia boyciana"], seed=31).json()["id"]
    client_for(expert).post(
        f"/api/v1/biodiversity/sightings/{research}/identifications",
        {"taxon": taxa["Ciconia boyciana"].pk},
        format="json",
    )
    client_for(expert).get(f"/api/v1/biodiversity/sightings/{research}")  # a logged look
    casual = post_sighting(observer_api, taxa["Ardea alba"], seed=32).json()["id"]
    exported = user_export(user=observer)
    mine = exported["biodiversity_sightings"]
    assert {s["id"] for s in mine} == {research, casual}
    assert mine[0]["location"] and "exif" in mine[0]["photos"][0]
    assert (
        user_export(user=expert)["biodiversity_true_location_accesses"][0]["sighting"] == research
    )

    user_erase(user=observer)
    kept = Sighting.objects.get(pk=research)
    assert kept.observer is None and kept.notes == "" and kept.place_name == ""
    assert kept.obscured and kept.client_uuid is None
    assert SightingPhoto.objects.get(sighting=kept).exif == {}
    assert not Sighting.objects.filter(pk=casual).exists()
    user_erase(user=expert)
    # Both identifications of the kept record stay, unlinked: they still make its community taxon.
    assert Identification.objects.filter(user__isnull=True).count() == 2
    assert Sighting.objects.get(pk=research).quality_grade == "research"
    # Each look (the identification's answer, then the read) stays logged, unlinked.
    assert TrueLocationAccess.objects.count() == 2
    assert not TrueLocationAccess.objects.filter(user__isnull=False).exists()
    assert not InstitutionMember.objects.exists()


def test_the_importer_refuses_a_bad_checklist_and_writes_nothing(db):
    bad = "scientific_name,rank,parent\nAnimalia,kingdom,\nFoo bar,species,Nowhere\nX,tribe,\n"
    with pytest.raises(TaxaImportError) as refused:
        taxa_import(text=bad)
    assert any("tribe" in p for p in refused.value.problems)
    assert Taxon.objects.count() == 0
    with pytest.raises(TaxaImportError) as orphan:
        taxa_import(text="scientific_name,rank,parent\nFoo bar,species,Nowhere\n")
    assert "Nowhere" in orphan.value.problems[0] and Taxon.objects.count() == 0
    with pytest.raises(CommandError):
        call_command("taxa_import", "/nonexistent.csv")


def test_the_wuhan_checklist_imports_with_its_threatened_species(db):
    out = io.StringIO()
    call_command("taxa_import", str(demo.CHECKLIST), stdout=out)
    species = Taxon.objects.filter(rank=Rank.SPECIES)
    assert species.count() > 300
    threatened = set(species.threatened().values_list("scientific_name", flat=True))
    assert {
        "Ciconia boyciana",
        "Neophocaena asiaeorientalis",
        "Metasequoia glyptostroboides",
    } <= threatened
    assert not {"Passer montanus", "Pycnonotus sinensis"} & threatened
    stork = Taxon.objects.get(scientific_name="Ciconia boyciana")
    assert [Taxon.objects.get(pk=i).scientific_name for i in stork.lineage_ids][:3] == [
        "Animalia",
        "Chordata",
        "Aves",
    ]
    call_command("taxa_import", str(demo.CHECKLIST), stdout=out)  # idempotent
    assert "0 created, 0 updated" in out.getvalue().splitlines()[-1]


def test_the_demo_seeder_is_quick_and_idempotent(districts):
    for email in demo.VOLUNTEERS:
        UserFactory(email=email)
    started = time.monotonic()
    out = io.StringIO()
    demo.seed(stdout=out)
    assert time.monotonic() - started < 20
    assert Sighting.objects.count() == demo.SIGHTINGS
    assert Sighting.objects.filter(obscured=True).count() >= demo.SIGHTINGS // 10
    assert Sighting.objects.filter(quality_grade="research").exists()
    assert User.objects.get(email=demo.EXPERT_EMAIL).role == User.Role.INSTITUTION_MEMBER
    assert demo.EXPERT_PASSWORD in out.getvalue()
    demo.seed(stdout=io.StringIO())
    assert Sighting.objects.count() == demo.SIGHTINGS
