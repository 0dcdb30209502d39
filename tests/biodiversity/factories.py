"""Factories for the biodiversity tests: a small taxon tree, institutions and projects.
Sightings are made through the API (or sighting_submit) so they carry real photos."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.gis.geos import MultiPolygon, Polygon
from django.utils import timezone

from biodiversity.institutions.models import Institution, SurveyProject
from biodiversity.taxa.services import taxa_import

#: A slice of the Wuhan checklist: a threatened stork, an unlisted heron and egret (one
#: genus each, same order), a level-II genus-wide listing stand-in, and a plant.
MINI_CHECKLIST = """scientific_name,rank,parent,chinese_name,protection_level,iucn
Animalia,kingdom,,动物界,,
Chordata,phylum,Animalia,脊索动物门,,
Aves,class,Chordata,鸟纲,,
Ciconiiformes,order,Aves,,,
Ciconiidae,family,Ciconiiformes,,,
Ciconia,genus,Ciconiidae,,,
Ciconia boyciana,species,Ciconia,东方白鹳,I,EN
Pelecaniformes,order,Aves,,,
Ardeidae,family,Pelecaniformes,,,
Ardea,genus,Ardeidae,,,
Ardea cinerea,species,Ardea,苍鹭,,LC
Ardea alba,species,Ardea,大白鹭,,LC
Egretta,genus,Ardeidae,,,
Egretta garzetta,species,Egretta,白鹭,,LC
Strigiformes,order,Aves,,II,
Strigidae,family,Strigiformes,,,
Otus,genus,Strigidae,,,
Otus lettia,species,Otus,领角鸮,,LC
Plantae,kingdom,,植物界,,
Tracheophyta,phylum,Plantae,维管植物门,,
Magnoliopsida,class,Tracheophyta,木兰纲,,
Lamiales,order,Magnoliopsida,,,
Oleaceae,family,Lamiales,,,
Osmanthus,genus,Oleaceae,,,
Osmanthus fragrans,species,Osmanthus,木樨,,
"""


def load_mini_checklist():
    from biodiversity.taxa.models import Taxon

    taxa_import(text=MINI_CHECKLIST)
    return {t.scientific_name: t for t in Taxon.objects.all()}


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    name = factory.Sequence(lambda n: f"Institute {n}")
    chinese_name = factory.Sequence(lambda n: f"研究所{n}")


def box(west, south, east, north) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((west, south, east, north)), srid=4326)


class SurveyProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SurveyProject

    institution = factory.SubFactory(InstitutionFactory)
    slug = factory.Sequence(lambda n: f"survey-{n}")
    name = factory.Sequence(lambda n: f"Survey {n}")
    area = factory.LazyFunction(lambda: box(114.2, 30.4, 114.5, 30.7))
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    members_only = True
    grants_true_coordinates = True
