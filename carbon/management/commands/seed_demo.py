"""Load demo data: districts, communities, the behaviour catalogue, partners, an
administrator, a reviewer (and the reviewer group) and residents; then what each feature
app registered in `carbon.demo_data` (offers, sightings, cells...).

Idempotent: running it again changes nothing that is already there.
"""

import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from carbon import demo_data
from carbon.demo.city import city_seed
from carbon.models import Behaviour, Claim, Community, Partner, User
from carbon.services.catalogue import catalogue_seed
from carbon.services.claims import claim_submit
from carbon.services.partners import partner_create
from carbon.services.people import consent_grant, resident_register

DEMO = Path(__file__).resolve().parents[2] / "demo"
DEMO_PASSWORD = "green-demo-2026"
ADMIN_PASSWORD = "admin-demo-2026"
REVIEWER_PASSWORD = "review-demo-2026"
# The reviewer group sees the claim queue, photos, transfers and appeals and decides claims;
# reversing an award (carbon.reverse_transfer) stays with administrators.
REVIEWER_GROUP = "reviewer"
REVIEWER_PERMISSIONS = [
    "view_claim",
    "view_claimphoto",
    "view_transfer",
    "view_appeal",
    "review_claim",
]
RESIDENTS = [
    ("alice@demo.carbon.city", "Alice Wang", "yongqing"),
    ("bo@demo.carbon.city", "Bo Li", "minzu"),
    ("chen@demo.carbon.city", "Chen Zhou", "zhonghua"),
]
# name, kind, behaviours it may report as partner events
PARTNERS = [
    ("Wuhan Metro", "transit_operator", []),
    ("Green Grocer", "merchant", ["own-bag", "e-receipt"]),
    ("Hankou Partner Bank", "bank", []),
    ("QingJu Bike Share", "platform", ["bike-share"]),
    ("Jianghan Recycling Station", "recycling_station", ["recycling"]),
    ("Ele Takeaway", "platform", ["no-cutlery"]),
    ("Wuhan Power Supply", "platform", ["saved-electricity"]),
    ("ReUse Market", "platform", ["second-hand"]),
    ("GreenRide NEV", "platform", ["nev-ride"]),
    ("StepUp Health", "platform", ["walking"]),
]
NAMESPACE = uuid.UUID("6f1c7a52-30a4-4c1e-9f3e-3f6f3b0a9c11")


class Command(BaseCommand):
    help = "Load demo data (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--size",
            type=int,
            default=None,
            help="residents of the demo city, with months of credited history (0: none; "
            "default: settings.DEMO_CITY_SIZE)",
        )

    def handle(self, *args, size=None, **options):
        if size is None:
            size = settings.DEMO_CITY_SIZE
        call_command("load_areas", str(DEMO / "districts.geojson"), kind="district", verbosity=0)
        call_command("load_areas", str(DEMO / "communities.geojson"), kind="community", verbosity=0)
        self._catalogue()
        self._partners()
        # After the partners: the metro lines name their operator, "Wuhan Metro".
        call_command("load_transit", demo=True, verbosity=0)
        self._people()
        if size > 0:
            added = city_seed(size=size, password=DEMO_PASSWORD, progress=self._progress)
            if added:
                self.stdout.write(
                    f"\ndemo city: {added} residents added (city-<n>@demo.carbon.city / {DEMO_PASSWORD})"
                )
        for seeder in demo_data.seeders():
            seeder.seed(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("demo data loaded"))

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(1, total)
        self.stdout.write(
            f"\rdemo city [{'#' * filled}{'.' * (width - filled)}] {done}/{total} residents",
            ending="",
        )
        self.stdout.flush()

    def _catalogue(self):
        start = timezone.now().replace(
            month=1, day=1, hour=0, minute=0, second=0, microsecond=0
        ) - timedelta(days=366)
        catalogue_seed(valid_from=start)

    def _partners(self):
        for name, kind, behaviours in PARTNERS:
            partner = Partner.objects.filter(name=name).first()
            if partner is None:
                issued = partner_create(name=name, kind=kind)
                partner = issued.partner
                self.stdout.write(
                    f"partner {name}: key id {issued.key_id} secret {issued.secret} (shown once)"
                )
            partner.behaviours.set(Behaviour.objects.filter(code__in=behaviours))

    def _reviewer_group(self) -> Group:
        group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
        permissions = Permission.objects.filter(
            content_type__app_label="carbon", codename__in=REVIEWER_PERMISSIONS
        )
        if len(permissions) != len(REVIEWER_PERMISSIONS):
            raise CommandError("The carbon permissions are missing: run `manage.py migrate`.")
        group.permissions.add(*permissions)  # adds only; what an operator added stays
        return group

    def _people(self):
        if not User.objects.filter(email="admin@demo.carbon.city").exists():
            User.objects.create_superuser(
                "admin@demo.carbon.city", ADMIN_PASSWORD, display_name="Admin"
            )
            self.stdout.write(f"administrator admin@demo.carbon.city / {ADMIN_PASSWORD}")
        reviewers = self._reviewer_group()
        if not User.objects.filter(email="reviewer@demo.carbon.city").exists():
            # City staff, not a resident: `User.objects.residents()` leaves them out.
            reviewer = User.objects.create_user(
                "reviewer@demo.carbon.city",
                REVIEWER_PASSWORD,
                display_name="Reviewer",
                is_staff=True,
                role=User.Role.ADMINISTRATOR,
            )
            reviewer.groups.add(reviewers)
            self.stdout.write(f"reviewer reviewer@demo.carbon.city / {REVIEWER_PASSWORD}")
        for email, display_name, community_code in RESIDENTS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = resident_register(
                    email=email,
                    password=DEMO_PASSWORD,
                    display_name=display_name,
                    community=Community.objects.get(code=community_code),
                )
                self.stdout.write(f"resident {email} / {DEMO_PASSWORD}")
            consent_grant(user=user, scope="transit_card")
            # A few self-declared claims so the ledger and receipts have something to show;
            # fixed keys make a second run a no-op.
            for i, (code, quantity) in enumerate(
                [("metro", "12.4"), ("bus", "2"), ("own-bag", "1")]
            ):
                key = str(uuid.uuid5(NAMESPACE, f"{email}:{i}"))
                if not Claim.objects.filter(user=user, idempotency_key=key).exists():
                    claim_submit(
                        user=user, behaviour_code=code, quantity=quantity, idempotency_key=key
                    )
