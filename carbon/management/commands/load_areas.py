"""Load districts or communities from a GeoJSON FeatureCollection (WGS-84)."""

from django.core.management.base import BaseCommand, CommandError

from carbon.services.areas import AreaDataError, areas_load


class Command(BaseCommand):
    help = (
        "Load districts or communities from GeoJSON. Each feature needs properties `code` and "
        "`name`; communities also `district` (a district code). Existing codes are updated."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--kind", choices=["district", "community"], required=True)

    def handle(self, *args, path, kind, **options):
        try:
            count = areas_load(path=path, kind=kind)
        except AreaDataError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{count} {kind} feature(s) loaded"))
