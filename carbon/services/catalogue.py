"""The behaviour catalogue: publishing new emission-factor versions without a code change."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Q
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
