"""Load the transit network: stations from GeoJSON, lines (ordered stops) from CSV."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from django.contrib.gis.geos import Point
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from carbon.models import LineStop, Partner, Station, TransitLine, TransitMode
from carbon.services.transit import haversine_m, network_changed

DEMO = Path(__file__).resolve().parents[2] / "demo" / "transit"
LINE_COLUMNS = [
    "line",
    "line_name",
    "mode",
    "operator",
    "sequence",
    "station",
    "metres_from_previous",
]
# Track shorter than this share of the straight line between two stops is a data error.
MIN_TRACK_RATIO = 0.8

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
        from argparse import RawDescriptionHelpFormatter

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
            with transaction.atomic():
                if stations:
                    count = self._stations(Path(stations))
                    if verbosity:
                        self.stdout.write(f"{count} station(s) loaded")
                if lines:
                    count, stops = self._lines(Path(lines))
                    if verbosity:
                        self.stdout.write(f"{count} line(s) with {stops} stop(s) loaded")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A feature or row of the wrong shape (not an object, short row, text where a
            # number belongs): nothing was loaded, say so plainly instead of a traceback.
            raise CommandError(f"malformed input, nothing loaded: {exc!r}") from None
        network_changed()
        if verbosity:
            self.stdout.write(self.style.SUCCESS("transit network loaded"))

    def _stations(self, path: Path) -> int:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        features = data.get("features") if isinstance(data, dict) else None
        if not isinstance(features, list):
            raise CommandError(f"{path}: expected a GeoJSON FeatureCollection")
        seen: set[str] = set()
        for i, feature in enumerate(features):
            props = feature.get("properties") or {}
            geometry = feature.get("geometry") or {}
            code, name, mode = props.get("code"), props.get("name"), props.get("mode")
            where = f"{path}: feature {i} ({code or 'no code'})"
            if not code or not name:
                raise CommandError(f"{where}: properties `code` and `name` are required")
            if code in seen:
                raise CommandError(f"{where}: code appears twice")
            seen.add(code)
            if mode not in TransitMode.values:
                raise CommandError(f"{where}: `mode` is one of {TransitMode.values}")
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                raise CommandError(f"{where}: a Point geometry is required")
            lon, lat = float(coords[0]), float(coords[1])
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise CommandError(f"{where}: coordinates are longitude, latitude in WGS-84")
            Station.objects.update_or_create(
                code=code,
                defaults={"name": name, "mode": mode, "location": Point(lon, lat, srid=4326)},
            )
        return len(features)

    def _lines(self, path: Path) -> tuple[int, int]:
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                missing = set(LINE_COLUMNS) - set(reader.fieldnames or [])
                if missing:
                    raise CommandError(
                        f"{path}: missing columns {sorted(missing)}; expected {LINE_COLUMNS}"
                    )
                rows = list(reader)
        except OSError as exc:
            raise CommandError(f"{path}: {exc}") from None
        by_line: dict[str, list[tuple[int, dict]]] = defaultdict(list)
        for n, row in enumerate(rows, start=2):
            by_line[(row["line"] or "").strip()].append((n, row))
        stations = {s.code: s for s in Station.objects.all()}
        total = 0
        for code, numbered in by_line.items():
            if not code:
                raise CommandError(f"{path}: line {numbered[0][0]}: `line` is empty")
            first = numbered[0][1]
            name, mode = first["line_name"].strip(), first["mode"].strip()
            operator_name = (first.get("operator") or "").strip()
            if mode not in TransitMode.values:
                raise CommandError(f"{path}: line {code}: `mode` is one of {TransitMode.values}")
            operator = None
            if operator_name:
                operator = Partner.objects.filter(name=operator_name).first()
                if operator is None:
                    raise CommandError(
                        f"{path}: line {code}: no partner is named {operator_name!r}"
                    )
            stops = []
            for n, row in numbered:
                where = f"{path}: row {n} ({code})"
                if (
                    row["line_name"].strip(),
                    row["mode"].strip(),
                    (row.get("operator") or "").strip(),
                ) != (
                    name,
                    mode,
                    operator_name,
                ):
                    raise CommandError(
                        f"{where}: line_name, mode and operator must be the same on every row"
                    )
                station = stations.get(row["station"].strip())
                if station is None:
                    raise CommandError(f"{where}: unknown station {row['station']!r}")
                if station.mode != mode:
                    raise CommandError(
                        f"{where}: station {station.code} is a {station.mode} station"
                    )
                try:
                    sequence = int(row["sequence"])
                    metres = (
                        int(row["metres_from_previous"])
                        if row["metres_from_previous"].strip()
                        else None
                    )
                except ValueError:
                    raise CommandError(
                        f"{where}: sequence and metres_from_previous are whole numbers"
                    ) from None
                if metres is not None and metres <= 0:
                    raise CommandError(f"{where}: metres_from_previous must be positive")
                stops.append((sequence, station, metres, where))
            stops.sort(key=lambda s: s[0])
            if len({s[0] for s in stops}) != len(stops):
                raise CommandError(f"{path}: line {code}: a sequence number appears twice")
            if len({s[1].pk for s in stops}) != len(stops):
                raise CommandError(f"{path}: line {code}: a station appears twice")
            if len(stops) < 2:
                raise CommandError(f"{path}: line {code}: a line has at least two stops")
            if stops[0][2] is not None:
                raise CommandError(f"{stops[0][3]}: the first stop has no metres_from_previous")
            for (_, prev, _, _), (_, station, metres, where) in zip(stops, stops[1:], strict=False):
                straight = haversine_m(prev.location, station.location)
                if metres is not None and metres < straight * MIN_TRACK_RATIO:
                    raise CommandError(
                        f"{where}: {metres} m along the line is shorter than the {straight:.0f} m "
                        f"straight line from {prev.code}"
                    )
            line, _ = TransitLine.objects.update_or_create(
                code=code, defaults={"name": name, "mode": mode, "operator": operator}
            )
            LineStop.objects.filter(line=line).delete()
            LineStop.objects.bulk_create(
                [
                    LineStop(
                        line=line, station=station, sequence=sequence, metres_from_previous=metres
                    )
                    for sequence, station, metres, _ in stops
                ]
            )
            total += len(stops)
        return len(by_line), total
