"""Rebuild leaderboards from their source of truth (the ledger, a feature app's records).

manage.py leaderboards_rebuild                      # every series
manage.py leaderboards_rebuild residents.grams.7d   # the series behind one board
"""

from django.core.management.base import BaseCommand, CommandError

from carbon.leaderboards.engine import boards_rebuild


class Command(BaseCommand):
    help = "Rebuild all leaderboards, or the one named (a board or series key)."

    def add_arguments(self, parser):
        parser.add_argument("key", nargs="?", help="a board key (GET /leaderboards) or series")

    def handle(self, *args, key=None, **options):
        try:
            rebuilt = boards_rebuild(key=key)
        except KeyError:
            raise CommandError(f"no leaderboard or series {key!r}") from None
        for series in rebuilt:
            self.stdout.write(f"rebuilt {series}")
