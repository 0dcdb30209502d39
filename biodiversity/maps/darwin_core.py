"""Darwin Core export of research-grade sightings: a CSV of occurrences and a Darwin Core
Archive (occurrence.txt, meta.xml, eml.xml). Public data only: the public point, and for an
obscured record the generalised point with `informationWithheld` saying so."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import UTC
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import timezone

from biodiversity.sightings.models import Sighting
from biodiversity.sightings.privacy import CELL_DEGREES
from biodiversity.taxa.models import Rank, Taxon

DWC = "http://rs.tdwg.org/dwc/terms/"
#: The exported terms, in column order (all in the Darwin Core namespace).
TERMS = [
    "occurrenceID",
    "basisOfRecord",
    "scientificName",
    "vernacularName",
    "taxonRank",
    "kingdom",
    "eventDate",
    "decimalLatitude",
    "decimalLongitude",
    "geodeticDatum",
    "coordinateUncertaintyInMeters",
    "individualCount",
    "countryCode",
    "identificationVerificationStatus",
    "informationWithheld",
    "dataGeneralizations",
]
WITHHELD = (
    f"Coordinates generalised to a random point in a {CELL_DEGREES}-degree cell to protect "
    "a threatened species or at the observer's request; the place name is withheld."
)


def _occurrences() -> Iterator[Sighting]:
    return (
        Sighting.objects.public()
        .research_grade()
        .filter(public_location__isnull=False, community_taxon__isnull=False)
        .select_related("community_taxon")
        .order_by("observed_at", "id")
        .iterator(chunk_size=2000)
    )


def _kingdoms() -> dict[int, str]:
    return dict(Taxon.objects.filter(rank=Rank.KINGDOM).values_list("pk", "scientific_name"))


def dwc_rows() -> Iterator[list[str]]:
    """The header, then one row per research-grade sighting."""
    yield TERMS
    kingdoms = _kingdoms()
    base = settings.BIODIVERSITY_OCCURRENCE_BASE_URL.rstrip("/")
    for s in _occurrences():
        taxon = s.community_taxon
        lineage = taxon.lineage_ids
        point = s.public_location
        verdict = s.verdicts.order_by("-created_at").values_list("outcome", flat=True).first()
        yield [
            f"{base}/{s.pk}",
            "HumanObservation",
            taxon.scientific_name,
            taxon.chinese_name,
            Rank(taxon.rank).name.lower(),
            kingdoms.get(lineage[0], "") if lineage else "",
            s.observed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            f"{point.y:.6f}",
            f"{point.x:.6f}",
            "WGS84",
            str(s.public_accuracy_m or ""),
            str(s.count),
            "CN",
            verdict or "community",
            WITHHELD if s.obscured else "",
            f"Coordinates generalised to a {CELL_DEGREES}-degree cell." if s.obscured else "",
        ]


def dwc_csv_lines() -> Iterator[str]:
    """The CSV, a line at a time (for a streaming response)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in dwc_rows():
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def meta_xml() -> str:
    fields = "\n".join(
        f'    <field index="{i}" term="{DWC}{term}"/>' for i, term in enumerate(TERMS) if i
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core encoding="UTF-8" fieldsTerminatedBy="," linesTerminatedBy="\\n"
        fieldsEnclosedBy="&quot;" ignoreHeaderLines="1"
        rowType="http://rs.tdwg.org/dwc/terms/Occurrence">
    <files><location>occurrence.txt</location></files>
    <id index="0"/>
{fields}
  </core>
</archive>
"""


def eml_xml() -> str:
    title = escape(settings.BIODIVERSITY_DATASET_TITLE)
    today = timezone.localdate().isoformat()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<eml:eml xmlns:eml="https://eml.ecoinformatics.org/eml-2.2.0"
         packageId="carbon-city-biodiversity-{today}" system="carbon-city" xml:lang="en">
  <dataset>
    <title>{title}</title>
    <creator><organizationName>{title}</organizationName></creator>
    <pubDate>{today}</pubDate>
    <language>zh</language>
    <abstract><para>Research-grade sightings by residents and research institutions.
    {escape(WITHHELD)}</para></abstract>
    <intellectualRights><para>CC BY 4.0</para></intellectualRights>
  </dataset>
</eml:eml>
"""


def dwc_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("occurrence.txt", "".join(dwc_csv_lines()))
        archive.writestr("meta.xml", meta_xml())
        archive.writestr("eml.xml", eml_xml())
    return out.getvalue()
