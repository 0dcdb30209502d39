from django.core.management.base import BaseCommand, CommandError

from carbon.services.ledger_check import ledger_check


class Command(BaseCommand):
    help = "Verify every ledger invariant; exits non-zero on any violation."

    def handle(self, *args, **options):
        violations = ledger_check()
        for v in violations:
            self.stderr.write(str(v))
        if violations:
            raise CommandError(f"{len(violations)} ledger invariant violation(s)")
        self.stdout.write(self.style.SUCCESS("ledger ok: every invariant holds"))
