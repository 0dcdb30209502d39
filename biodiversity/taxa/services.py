"""Loading and finding taxa: the CSV checklist importer (idempotent; a row's parent is named
by its scientific name) and the threatened check sightings use to decide obscuring."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from biodiversity.taxa.models import Iucn, ProtectionLevel, Rank, Taxon
from carbon.errors import DomainError, ErrorCode

#: The columns of a checklist CSV (a header row names them, in any order).
COLUMNS = ("scientific_name", "rank", "parent", "chinese_name", "protection_level", "iucn")
_RANKS = {label.lower(): value for value, label in zip(Rank.values, Rank.names, strict=True)}


class UnknownTaxon(DomainError):
    code = ErrorCode.UNKNOWN_TAXON


class TaxaImportError(ValueError):
    """A checklist that cannot be imported; nothing of it was written. `problems` lists
    each bad row as "line N: why"."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems[:20]))


@dataclass(frozen=True)
class TaxaImport:
    created: int
    updated: int
    unchanged: int


def taxon_get(*, taxon_id: object) -> Taxon:
    """A taxon by id; UnknownTaxon (400) for anything else, so a client learns the id is
    wrong rather than that a page is missing."""
    try:
        return Taxon.objects.get(pk=int(taxon_id))  # type: ignore[call-overload]
    except (Taxon.DoesNotExist, TypeError, ValueError, OverflowError):
        raise UnknownTaxon(
            _("No taxon has the id %(id)s.") % {"id": str(taxon_id)[:40]},
            details={"taxon": str(taxon_id)[:40]},
        ) from None


def taxa_threatened(*, taxa: Iterable[Taxon]) -> bool:
    """Whether any of these taxa, or any of their ancestors, is threatened (a whole genus or
    family is often listed as one)."""
    ids = {i for taxon in taxa for i in taxon.lineage_ids}
    return bool(ids) and Taxon.objects.filter(pk__in=ids).threatened().exists()


def taxa_import(*, text: str) -> TaxaImport:
    """Create or update the taxa of a checklist CSV (COLUMNS), parents before or after their
    children, then refresh every path. All or nothing."""
    rows, problems = _rows(text)
    if problems:
        raise TaxaImportError(problems)
    with transaction.atomic():
        existing = {t.scientific_name: t for t in Taxon.objects.select_for_update()}
        created = updated = unchanged = 0
        for row in rows:
            taxon = existing.get(row["scientific_name"])
            fields = {k: row[k] for k in ("rank", "chinese_name", "protection_level", "iucn")}
            if taxon is None:
                existing[row["scientific_name"]] = Taxon.objects.create(
                    scientific_name=row["scientific_name"], **fields
                )
                created += 1
            elif any(getattr(taxon, k) != v for k, v in fields.items()):
                for k, v in fields.items():
                    setattr(taxon, k, v)
                taxon.save(update_fields=list(fields))
                updated += 1
            else:
                unchanged += 1
        parents_changed = []
        for row in rows:
            taxon = existing[row["scientific_name"]]
            parent = existing.get(row["parent"]) if row["parent"] else None
            if row["parent"] and parent is None:
                problems.append(
                    f"line {row['line']}: the parent {row['parent']!r} is neither in the file "
                    "nor already known"
                )
                continue
            if taxon.parent_id != (parent.pk if parent else None):
                taxon.parent = parent
                parents_changed.append(taxon)
        if problems:
            transaction.set_rollback(True)
            raise TaxaImportError(problems)
        Taxon.objects.bulk_update(parents_changed, ["parent"])
        cycle = taxa_paths_refresh()
        if cycle:
            transaction.set_rollback(True)
            raise TaxaImportError([f"the parents of {', '.join(cycle[:5])} form a cycle"])
    return TaxaImport(created=created, updated=updated, unchanged=unchanged)


def taxa_paths_refresh() -> list[str]:
    """Recompute every taxon's materialised path from the parent links. Returns the names
    of taxa caught in a parent cycle (then nothing is saved)."""
    taxa = {t.pk: t for t in Taxon.objects.only("id", "parent_id", "path", "scientific_name")}
    paths: dict[int, str] = {}
    for pk in taxa:
        chain, cursor = [], pk
        while cursor is not None and cursor not in paths:
            if cursor in chain:
                return [taxa[i].scientific_name for i in chain]
            chain.append(cursor)
            cursor = taxa[cursor].parent_id
        prefix = paths[cursor] if cursor is not None else "/"
        for i in reversed(chain):
            prefix = f"{prefix}{i}/"
            paths[i] = prefix
    changed = [t for pk, t in taxa.items() if t.path != paths[pk]]
    for t in changed:
        t.path = paths[t.pk]
    Taxon.objects.bulk_update(changed, ["path"], batch_size=500)
    return []


def _rows(text: str) -> tuple[list[dict], list[str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("scientific_name", "rank") if c not in (reader.fieldnames or [])]
    if missing:
        return [], [f"the header lacks {', '.join(missing)}"]
    rows, problems, seen = [], [], set()
    for line, raw in enumerate(reader, start=2):
        row = {c: (raw.get(c) or "").strip() for c in COLUMNS}
        row["line"] = line
        name = row["scientific_name"]
        why = None
        if not name:
            why = "no scientific name"
        elif name in seen:
            why = f"{name!r} appears twice"
        elif row["rank"].lower() not in _RANKS:
            why = f"unknown rank {row['rank']!r}"
        elif row["protection_level"] not in ProtectionLevel.values:
            why = f"protection level must be I, II or empty, not {row['protection_level']!r}"
        elif row["iucn"].upper() not in Iucn.values:
            why = f"unknown IUCN category {row['iucn']!r}"
        if why:
            problems.append(f"line {line}: {why}")
            continue
        seen.add(name)
        row["rank"] = _RANKS[row["rank"].lower()]
        row["iucn"] = row["iucn"].upper()
        rows.append(row)
    return rows, problems
