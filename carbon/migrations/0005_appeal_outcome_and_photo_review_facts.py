"""Appeals record what deciding them credited and why; a photo's duplicate match moves from
the resident's receipt (which named another resident's claim) to a field only staff see."""

import re

from django.db import migrations, models

# The old refusal texts quoted the other claim: "... another claim (claim <uuid>) in ...".
_CLAIM_QUOTE = re.compile(r" ?\(claim [0-9a-fA-F-]{36}\)")
_DUPLICATE_CODES = ("duplicate_photo", "possible_duplicate_photo")


def _scrubbed(value):
    """The receipt without any quoted claim id (in reasons, and in the history's copies)."""
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    if isinstance(value, str):
        return _CLAIM_QUOTE.sub("", value)
    return value


def move_duplicate_facts(apps, schema_editor):
    Claim = apps.get_model("carbon", "Claim")
    ClaimPhoto = apps.get_model("carbon", "ClaimPhoto")
    for claim in Claim.objects.filter(evidence_type="photo").only("id", "receipt").iterator():
        receipt = claim.receipt or {}
        steps = receipt.get("steps") or []
        step = next((s for s in steps if s.get("step") == "verification"), None)
        facts = (step or {}).get("facts") or {}
        if "duplicate_of_claim" not in facts:
            continue
        ClaimPhoto.objects.filter(claim_id=claim.pk).update(
            review_facts={
                "duplicate_of_claim": facts["duplicate_of_claim"],
                "distance": facts.get("distance"),
                "same_file": facts.get("same_file"),
                "transform": "identity",
            }
        )
        if step.get("code") in _DUPLICATE_CODES:
            step["facts"] = {"duplicate": True}
        else:
            step["facts"] = {k: v for k, v in facts.items() if k not in ("duplicate_of_claim",)}
        claim.receipt = _scrubbed(receipt)
        claim.save(update_fields=["receipt"])


def record_appeal_outcomes(apps, schema_editor):
    """Appeals decided before this: their claim's receipt as it is now is the best record."""
    Appeal = apps.get_model("carbon", "Appeal")
    for appeal in Appeal.objects.exclude(status="open").select_related("claim").iterator():
        receipt = appeal.claim.receipt or {}
        appeal.credited_g = appeal.claim.credited_g
        appeal.outcome_code = str(receipt.get("code") or "")[:64]
        appeal.outcome_reason = str(receipt.get("reason") or "")[:500]
        appeal.save(update_fields=["credited_g", "outcome_code", "outcome_reason"])


class Migration(migrations.Migration):
    dependencies = [
        ("carbon", "0004_link_proof"),
    ]

    operations = [
        migrations.AddField(
            model_name="appeal",
            name="credited_g",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="appeal",
            name="outcome_code",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="appeal",
            name="outcome_reason",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="claimphoto",
            name="review_facts",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(move_duplicate_facts, migrations.RunPython.noop),
        migrations.RunPython(record_appeal_outcomes, migrations.RunPython.noop),
    ]
