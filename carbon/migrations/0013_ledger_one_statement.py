"""A lifetime-earned counter on each account, so GET /me reads one row instead of summing a
resident's transfers; backfilled from the transfers with the sum /me used until now (awards
credited less reversals debited, residents only: no other account earns)."""

from django.db import migrations, models

BACKFILL = """
UPDATE carbon_account SET lifetime_g =
    COALESCE((SELECT SUM(t.amount_g) FROM carbon_transfer t
              WHERE t.credit_account_id = carbon_account.id AND t.code = 'award'), 0)
  - COALESCE((SELECT SUM(t.amount_g) FROM carbon_transfer t
              WHERE t.debit_account_id = carbon_account.id AND t.code = 'reversal'), 0)
WHERE kind = 'resident'
"""


class Migration(migrations.Migration):
    dependencies = [
        ("carbon", "0012_leaderboard_score_bands"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="lifetime_g",
            field=models.BigIntegerField(default=0, verbose_name="lifetime earned (g)"),
        ),
        # Reversing the migration drops the column, so there is nothing to undo here.
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
