from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from carbon.models import Partner
from carbon.services.partners import partner_create


class Command(BaseCommand):
    help = "Create a partner and print its key id and secret (shown this once only)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", required=True, choices=Partner.Kind.values)

    def handle(self, *args, name, kind, **options):
        try:
            issued = partner_create(name=name, kind=kind)
        except IntegrityError:
            raise CommandError(
                f"A partner named {name!r} already exists; rotate its key in the admin."
            ) from None
        self.stdout.write(f"partner: {issued.partner.name} ({issued.partner.kind})")
        self.stdout.write(f"key id:  {issued.key_id}")
        self.stdout.write(f"secret:  {issued.secret}")
        self.stdout.write("Store the secret now: it cannot be shown again.")
