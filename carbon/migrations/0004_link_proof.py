# Proof of control for transit cards and partner links (issue 12). Links made before this
# migration were never proven; they are kept as confirmed, marked `legacy`, so residents keep
# earning, and a holder who proves control later takes the account over from them.

from django.db import migrations, models
from django.db.models import F

STATUS_CHOICES = [
    ("pending", "Waiting for proof of control"),
    ("confirmed", "Confirmed by the partner"),
    ("void", "Never confirmed (expired, too many wrong codes, cancelled or superseded)"),
]
VIA_CHOICES = [
    ("partner", "Confirmed by the partner's signed request"),
    ("code", "The resident entered the partner's one-time code"),
    ("legacy", "Linked before proof of control was required"),
]


def _proof_fields(model_name):
    return [
        # Existing rows: confirmed (legacy); new ones start pending (the AlterField below).
        migrations.AddField(
            model_name=model_name,
            name="status",
            field=models.CharField(choices=STATUS_CHOICES, default="confirmed", max_length=10),
        ),
        migrations.AlterField(
            model_name=model_name,
            name="status",
            field=models.CharField(choices=STATUS_CHOICES, default="pending", max_length=10),
        ),
        migrations.AddField(
            model_name=model_name,
            name="confirmed_via",
            field=models.CharField(blank=True, choices=VIA_CHOICES, default="legacy", max_length=8),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name=model_name,
            name="confirmed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="link_token",
            field=models.CharField(blank=True, max_length=32, null=True, unique=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="code_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name=model_name,
            name="code_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name=model_name,
            name="code_attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name=model_name,
            name="end_reason",
            field=models.CharField(blank=True, max_length=20),
        ),
    ]


def legacy_confirmed_at(apps, schema_editor):
    for name in ("TransitCard", "PartnerLink"):
        apps.get_model("carbon", name).objects.filter(confirmed_at__isnull=True).update(
            confirmed_at=F("linked_at")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("carbon", "0003_claim_and_transfer_permissions"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="transitcard", name="one_active_link_per_card"),
        migrations.RemoveConstraint(model_name="partnerlink", name="one_active_partner_link"),
        *_proof_fields("transitcard"),
        *_proof_fields("partnerlink"),
        migrations.RunPython(legacy_confirmed_at, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="transitcard",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "confirmed"), ("unlinked_at__isnull", True)),
                fields=("card_hash",),
                name="one_active_link_per_card",
            ),
        ),
        migrations.AddConstraint(
            model_name="transitcard",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "pending"), ("unlinked_at__isnull", True)),
                fields=("user", "card_hash"),
                name="one_pending_link_per_resident_card",
            ),
        ),
        migrations.AddConstraint(
            model_name="partnerlink",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "confirmed"), ("unlinked_at__isnull", True)),
                fields=("partner", "external_ref_hash"),
                name="one_active_partner_link",
            ),
        ),
        migrations.AddConstraint(
            model_name="partnerlink",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "pending"), ("unlinked_at__isnull", True)),
                fields=("user", "partner", "external_ref_hash"),
                name="one_pending_partner_link_per_resident",
            ),
        ),
    ]
