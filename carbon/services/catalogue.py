"""The behaviour catalogue: publishing new emission-factor versions without a code change,
and what is published, cached in each process until the next publication."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Max, Prefetch, Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.demo.catalogue import BEHAVIOURS
from carbon.errors import DomainError, ErrorCode
from carbon.models import Behaviour, District, EmissionFactor


class InvalidFactor(DomainError):
    code = ErrorCode.INVALID_FACTOR


@transaction.atomic
def emission_factor_publish(
    *,
    behaviour: Behaviour,
    grams_per_unit: Decimal,
    methodology: str,
    source: str,
    valid_from: datetime | None = None,
    district: District | None = None,
    unit: str | None = None,
) -> EmissionFactor:
    """Publish the next version; the version in force at `valid_from` is closed there.

    Credits already made keep pointing at the version they used, which is never edited.
    """
    valid_from = valid_from or timezone.now()
    grams_per_unit = Decimal(str(grams_per_unit))
    if grams_per_unit < 0:
        raise InvalidFactor(_("A factor cannot be negative."))
    if not methodology.strip() or not source.strip():
        raise InvalidFactor(_("Methodology and source are required on every factor."))
    same_scope = (
        EmissionFactor.objects.select_for_update()
        .filter(behaviour=behaviour)
        .filter(Q(district=district) if district else Q(district__isnull=True))
    )
    later = same_scope.filter(valid_from__gte=valid_from)
    if later.exists():
        raise InvalidFactor(_("A version starting at or after this date already exists."))
    same_scope.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=valid_from)).update(
        valid_to=valid_from
    )
    version = (
        EmissionFactor.objects.filter(behaviour=behaviour).aggregate(v=Max("version"))["v"] or 0
    ) + 1
    return EmissionFactor.objects.create(
        behaviour=behaviour,
        district=district,
        version=version,
        grams_per_unit=grams_per_unit,
        unit=unit or behaviour.unit,
        valid_from=valid_from,
        methodology=methodology.strip(),
        source=source.strip(),
    )


@transaction.atomic
def catalogue_seed(*, valid_from: datetime, codes: set[str] | None = None) -> list[Behaviour]:
    """Load version 1 of the behaviour catalogue (carbon/demo/catalogue.py): behaviours are
    created or updated; a behaviour's first factor is published only if it has none, so
    running it again never touches versions an administrator published since."""
    loaded = []
    for row in BEHAVIOURS:
        (code, name, category, unit, evidence, scope, max_q, per_action, daily, monthly,
         window, grams, methodology, source) = row  # fmt: skip
        if codes is not None and code not in codes:
            continue
        behaviour, _ = Behaviour.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "category": category,
                "unit": unit,
                "evidence_types": evidence,
                "consent_scope": scope,
                "max_quantity": max_q,
                "per_action_cap_g": per_action,
                "daily_cap_g": daily,
                "monthly_cap_g": monthly,
                "claim_window_days": window,
            },
        )
        if not EmissionFactor.objects.filter(behaviour=behaviour).exists():
            emission_factor_publish(
                behaviour=behaviour,
                grams_per_unit=grams,
                methodology=methodology,
                source=source,
                valid_from=valid_from,
                unit=unit,
            )
        loaded.append(behaviour)
    return loaded


# --- what is published, cached per process ---------------------------------------------------
# Behaviours and factors change only when an administrator publishes, yet every claim and
# every GET /behaviours read them (2-3 statements each). Each process keeps one snapshot of
# the whole catalogue, under a version token held in the shared cache (Redis in production),
# so a publication seen by one process reaches all of them at their next read: saving or
# deleting a behaviour or a factor (any path through the ORM: the publish service, the admin,
# a seed) replaces the token. The token is replaced at once (this process reads its own write,
# inside the transaction too) and again on commit (another process that reloaded in between
# saw the data before the commit). An edit that bypasses the ORM's signals (raw SQL, a
# queryset update() of these tables) is seen after SNAPSHOT_MAX_AGE_S, or at once after
# catalogue_changed().

VERSION_KEY = "carbon:catalogue:version"
SNAPSHOT_MAX_AGE_S = 60.0

log = logging.getLogger(__name__)


@dataclass
class CatalogueSnapshot:
    """Every behaviour (active or not) and every factor version, as loaded at one catalogue
    version. Shared by the threads of a process: read it, never change its objects."""

    token: str | None
    loaded_at: float
    behaviours: dict[str, Behaviour]
    # behaviour id -> its factors, newest version first (each with its district loaded)
    factors: dict[int, list[EmissionFactor]]
    # Values derived from this catalogue (a rendered listing), see catalogue_memo.
    derived: dict[Hashable, tuple[Any, datetime | None]] = field(default_factory=dict)

    def active(self) -> list[Behaviour]:
        """Active behaviours in the catalogue's order (category, code)."""
        return sorted(
            (b for b in self.behaviours.values() if b.is_active), key=lambda b: (b.category, b.code)
        )


_snapshot: CatalogueSnapshot | None = None


def _shared_token() -> str | None:
    """The catalogue's current version token; None when the shared cache cannot be read (the
    snapshot is then reloaded on every read: slower, never stale)."""
    try:
        token = cache.get(VERSION_KEY)
        if token is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            token = cache.get(VERSION_KEY)
        return token
    except Exception:  # the cache server is down: fall back to the database
        log.warning("catalogue version unreadable from the cache", exc_info=True)
        return None


def _load(token: str | None) -> CatalogueSnapshot:
    factors = EmissionFactor.objects.select_related("district").order_by("behaviour_id", "-version")
    behaviours = Behaviour.objects.prefetch_related(Prefetch("factors", queryset=factors))
    loaded = {b.code: b for b in behaviours}
    return CatalogueSnapshot(
        token=token,
        loaded_at=time.monotonic(),
        behaviours=loaded,
        factors={b.pk: list(b.factors.all()) for b in loaded.values()},
    )


def catalogue_snapshot() -> CatalogueSnapshot:
    """The catalogue as published now: this process's snapshot while the shared version token
    is the one it was loaded under, else a fresh one (2 statements)."""
    global _snapshot
    # The token is read before the rows: a publication between the two replaces the token
    # again, so a snapshot is never kept under a token newer than its rows.
    token = _shared_token()
    current = _snapshot
    if (
        current is not None
        and token is not None
        and current.token == token
        and time.monotonic() - current.loaded_at < SNAPSHOT_MAX_AGE_S
    ):
        return current
    current = _load(token)
    _snapshot = current
    return current


def _new_token() -> None:
    global _snapshot
    _snapshot = None
    try:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:  # unreadable too, then: every read goes to the database
        log.warning("catalogue version not replaced in the cache", exc_info=True)


def catalogue_changed() -> None:
    """Tell every process the catalogue changed: now, and again once the change commits."""
    _new_token()
    transaction.on_commit(_new_token)


def catalogue_forget() -> None:
    """Drop this process's snapshot (tests: each test's database has its own catalogue)."""
    global _snapshot
    _snapshot = None


def _on_catalogue_write(sender, **kwargs) -> None:
    catalogue_changed()


def catalogue_watch() -> None:
    """Connect the invalidation to every save and delete of a behaviour or factor (from the
    app's ready())."""
    for model in (Behaviour, EmissionFactor):
        uid = f"carbon.catalogue.{model.__name__}"
        post_save.connect(_on_catalogue_write, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(_on_catalogue_write, sender=model, dispatch_uid=f"{uid}.delete")


def behaviour_active(*, code: str, catalogue: CatalogueSnapshot | None = None) -> Behaviour | None:
    """The active behaviour `code`, from the cached catalogue (or `catalogue`, a snapshot the
    caller already holds)."""
    behaviour = (catalogue or catalogue_snapshot()).behaviours.get(code)
    return behaviour if behaviour is not None and behaviour.is_active else None


def factor_for_claim(
    *,
    behaviour: Behaviour,
    when: datetime,
    district_id: int | None,
    catalogue: CatalogueSnapshot | None = None,
) -> EmissionFactor | None:
    """EmissionFactor.objects.for_claim from the cached catalogue (or `catalogue`, a snapshot
    the caller already holds: a claim decided on the version its behaviour came from, for one
    read of the version token): the factor in force at `when`, the district's own when it has
    one, else the city-wide one; the newest version."""
    in_force = [
        f
        for f in (catalogue or catalogue_snapshot()).factors.get(behaviour.pk, ())
        if f.valid_from <= when and (f.valid_to is None or f.valid_to > when)
    ]
    if district_id is not None:
        local = next((f for f in in_force if f.district_id == district_id), None)
        if local is not None:
            return local
    return next((f for f in in_force if f.district_id is None), None)


def catalogue_memo(
    key: Hashable, build: Callable[[CatalogueSnapshot], tuple[Any, datetime | None]]
) -> Any:
    """A value derived from the catalogue alone (the rendered listing of GET /behaviours, per
    language), built once per catalogue version. `build` returns the value and the moment it
    stops being true without a publication (the next factor taking or leaving force), or
    None."""
    snapshot = catalogue_snapshot()
    kept = snapshot.derived.get(key)
    if kept is not None and (kept[1] is None or timezone.now() < kept[1]):
        return kept[0]
    value, fresh_until = build(snapshot)
    snapshot.derived[key] = (value, fresh_until)
    return value


def factors_next_change(*, snapshot: CatalogueSnapshot, after: datetime) -> datetime | None:
    """The first moment after `after` at which a factor takes or leaves force."""
    moments = [
        moment
        for factors in snapshot.factors.values()
        for f in factors
        for moment in (f.valid_from, f.valid_to)
        if moment is not None and moment > after
    ]
    return min(moments, default=None)
