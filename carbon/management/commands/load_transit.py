"""Load the transit network: stations from GeoJSON, lines (ordered stops) from CSV."""

from __future__ import annotations

from argparse import RawDescriptionHelpFormatter

from django.core.management.base import BaseCommand, CommandError

from carbon.adapters.transit.network_load import DEMO, NetworkDataError, transit_network_load

HELP = """Load transit stations and lines (idempotent: existing codes are updated).

Stations: a GeoJSON FeatureCollection of Point features in WGS-84 (longitude, latitude),
each with properties `code` (a slug, unique), `name` and `mode` ("metro" or "bus").
A metro station served by several lines is one feature (that is how interchanges are
known); bus stops are their own features.

Lines: a UTF-8 CSV with a header row and one row per stop:
  line, line_name, mode, operator, sequence, station, metres_from_previous
`line` is the line code, `mode` metro or bus, `operator` the name of the partner that runs
it (may be empty; when set, only that partner may report taps on the line), `sequence` the
stop's position (1, 2, ... in travel order), `station` a station code of the same mode, and
`metres_from_previous` the distance along the track or road from the previous stop (empty on
the first stop; empty elsewhere means "use the straight line"). A line in the file replaces
that line's stops; lines not in the file are left alone. Stations are never deleted (taps
refer to them).

--demo loads the small Wuhan network shipped in carbon/demo/transit/ (parts of Metro Lines 2
and 4, which interchange at Hongshan Square and Zhongnan Road, and two bus lines)."""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, *args, **kwargs):
        parser = super().create_parser(*args, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--stations", help="GeoJSON file of stations")
        parser.add_argument("--lines", help="CSV file of lines and their stops")
        parser.add_argument(
            "--demo", action="store_true", help="load the bundled Wuhan demo network"
        )

    def handle(self, *args, stations=None, lines=None, demo=False, verbosity=1, **options):
        if demo:
            stations = stations or str(DEMO / "stations.geojson")
            lines = lines or str(DEMO / "lines.csv")
        if not stations and not lines:
            raise CommandError("give --stations and/or --lines (or --demo)")
        try:
            loaded = transit_network_load(stations=stations, lines=lines)
        except NetworkDataError as exc:
            raise CommandError(str(exc)) from None
        if verbosity and stations:
            self.stdout.write(f"{loaded.stations} station(s) loaded")
        if verbosity and lines:
            self.stdout.write(f"{loaded.lines} line(s) with {loaded.stops} stop(s) loaded")
        if verbosity:
            self.stdout.write(self.style.SUCCESS("transit network loaded"))
