"""Invite a member to a merchant's staff and print the one-time token with which they set a
password (POST /api/v1/merchant/invitations/accept), e.g.

    manage.py merchant_staff_invite --merchant "Green Grocer" --email till@example.org --manager
"""

from django.core.management.base import BaseCommand, CommandError

from carbon.errors import DomainError
from carbon.models import Partner
from rewards.merchants.staff import staff_invite


class Command(BaseCommand):
    help = "Invite a merchant staff member; prints the one-time token to set a password."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", required=True, help="The merchant partner's name.")
        parser.add_argument("--email", required=True)
        parser.add_argument("--manager", action="store_true", help="May invite staff too.")

    def handle(self, *args, merchant, email, manager, **options):
        partner = Partner.objects.filter(name=merchant).first()
        if partner is None:
            raise CommandError(f"No partner is named {merchant!r}.")
        try:
            issued = staff_invite(merchant=partner, email=email, manager=manager)
        except DomainError as exc:
            raise CommandError(f"{exc.code.value}: {exc.message}") from None
        self.stdout.write(
            f"invited {issued.staff.user.email} to {partner.name}"
            f"{' as a manager' if manager else ''}\n"
            f"one-time token (until {issued.expires_at.isoformat(timespec='minutes')}): "
            f"{issued.token}\n"
            "they set a password with POST /api/v1/merchant/invitations/accept "
            '{"token": ..., "password": ...}, then log in at /api/v1/auth/token'
        )
