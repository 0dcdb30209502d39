"""The survey projects' live leaderboards: per project, its observers by species and by
sightings (`project_observer_counts`, the project's own reconcilable statistics), registered
with the core's leaderboard registry as two families and kept live from the sightings.

A species count is distinct (a second sighting of a species adds none), so it cannot be fed
as +1s: after any change that can move an observer's numbers (a sighting saved or deleted,
an identification regrading it, a membership of a closed survey, an erasure) the observer
is recounted from the same query a rebuild reads and the result is set on the board. A
project whose area, window or rule changed is rebuilt whole. All time only: the project's
own window is the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from biodiversity.institutions.models import ProjectMember, SurveyProject
from biodiversity.projects.stats import project_observer_counts
from biodiversity.sightings.models import Sighting
from carbon.leaderboards import engine, registry
from carbon.leaderboards.ledger_source import resident_member, residents_describe
from carbon.leaderboards.registry import BoardFamily, BoardSource
from carbon.leaderboards.windows import Window, local_date

SPECIES = "biodiversity.project_species"
SIGHTINGS = "biodiversity.project_sightings"
#: family key -> (the count it ranks by, title, what counts, unit)
_KINDS = {
    SPECIES: (
        "species",
        _("{project}: observers by species"),
        _(
            "Distinct species (research-grade sightings whose community taxon is a species or "
            "below) among each observer's sightings that the project counts: inside its area "
            "and window, not hidden, and for a closed survey by its members and volunteers."
        ),
        "species",
    ),
    SIGHTINGS: (
        "sightings",
        _("{project}: observers by sightings"),
        _(
            "Each observer's sightings that the project counts (any quality grade): inside "
            "its area and window, not hidden, and for a closed survey by its members and "
            "volunteers."
        ),
        "sightings",
    ),
}


def project_series(family: str, project_id: int) -> str:
    return f"{family}.{project_id}"


def _events(family: str, project: SurveyProject):
    # All time only: the day an event counts on does not matter.
    field, today = _KINDS[family][0], local_date()
    for row in project_observer_counts(project=project):
        yield engine.member_key(row["observer"]), today, row[field]


def _family(family: str) -> BoardFamily:
    field, title, counts, unit = _KINDS[family]

    def source(scope: str) -> BoardSource | None:
        if not scope.isdigit():
            return None
        project = SurveyProject.objects.filter(pk=int(scope)).first()
        if project is None:
            return None
        return BoardSource(
            key=project_series(family, project.pk),
            title=format_lazy(title, project=project.name),
            counts=counts,
            unit=unit,
            member_kind="resident",
            events=lambda: _events(family, project),
            describe=residents_describe,
            windows=(Window.ALL,),
            member_of_user=resident_member,
        )

    def scopes() -> list[str]:
        return [str(pk) for pk in SurveyProject.objects.order_by("pk").values_list("pk", flat=True)]

    return BoardFamily(key=family, scopes=scopes, source=source)


def observers_recount(*, user_ids: Iterable[int], project_ids: Iterable[int] | None = None):
    """Recount these observers on every project's boards (or these projects') and set their
    rows. Called after commit."""
    users = sorted({u for u in user_ids if u is not None})
    if not users:
        return
    projects = SurveyProject.objects.order_by("pk")
    if project_ids is not None:
        projects = projects.filter(pk__in=list(project_ids))
    for project in projects:
        found = {
            row["observer"]: row
            for row in project_observer_counts(project=project).filter(observer__in=users)
        }
        for family, (field, *_rest) in _KINDS.items():
            engine.board_set(
                series=project_series(family, project.pk),
                scores={engine.member_key(u): found.get(u, {}).get(field, 0) for u in users},
            )


def project_boards_rebuild() -> None:
    """Rebuild every project's boards from the sightings (after rows written set-based, as
    the demo seeds them, without the signals that keep the boards live)."""
    for project_id in SurveyProject.objects.order_by("pk").values_list("pk", flat=True):
        for family in _KINDS:
            engine.series_rebuild(series=project_series(family, project_id))


def _later(users: Sequence[int | None], projects: Sequence[int] | None = None) -> None:
    transaction.on_commit(
        lambda: observers_recount(user_ids=users, project_ids=projects), robust=True
    )


def _sighting_changed(sender, instance: Sighting, **kwargs) -> None:
    _later([instance.observer_id])


def _membership_changed(sender, instance: ProjectMember, **kwargs) -> None:
    _later([instance.user_id], [instance.project_id])


def _project_changed(sender, instance: SurveyProject, **kwargs) -> None:
    # A new area, window or rule moves everyone: rebuild the project's boards.
    def rebuild():
        for family in _KINDS:
            engine.boards_rebuild(key=project_series(family, instance.pk))

    transaction.on_commit(rebuild, robust=True)


def _account_saved(sender, instance, update_fields=None, **kwargs) -> None:
    # An erasure anonymises the observer's sightings with an update (no sighting signal):
    # their rows leave the boards.
    if getattr(instance, "erased_at", None) is not None:
        _later([instance.pk])


def project_boards_register() -> None:
    """From BiodiversityConfig.ready(): the two families and what keeps them live."""
    for family in _KINDS:
        registry.register(_family(family))
    for name, signal in (("save", post_save), ("delete", post_delete)):
        signal.connect(_sighting_changed, sender=Sighting, dispatch_uid=f"bio-board-s-{name}")
        signal.connect(
            _membership_changed, sender=ProjectMember, dispatch_uid=f"bio-board-m-{name}"
        )
    post_save.connect(_project_changed, sender=SurveyProject, dispatch_uid="bio-board-project")
    post_save.connect(_account_saved, sender=get_user_model(), dispatch_uid="bio-board-erased")
