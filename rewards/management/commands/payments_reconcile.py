"""`manage.py payments_reconcile`: every Stripe object we created matches exactly one record
of ours and the reverse; exits 1 on any mismatch (or when a configured Stripe does not
answer). Without Stripe configured only our own records are checked."""

from django.core.management.base import BaseCommand, CommandError

from rewards.payments.reconcile import payments_reconcile


class Command(BaseCommand):
    help = "Check that our payment records and Stripe's objects match one to one."

    def handle(self, *args, **options):
        result = payments_reconcile()
        for line in result.mismatches:
            self.stderr.write(line)
        if not result.ok:
            raise CommandError(f"{len(result.mismatches)} mismatch(es)")
        where = (
            "Stripe and our records"
            if result.stripe_reached
            else "our records (Stripe not configured)"
        )
        self.stdout.write(
            f"payments reconciled: {result.checked_objects} Stripe objects, "
            f"{result.checked_records} requests; checked {where}"
        )
