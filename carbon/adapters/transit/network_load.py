"""Loading the transit network from files: stations from GeoJSON, lines (ordered stops, with
the track length between them) from CSV. Checked whole before anything is written; a line
in the file replaces that line's stops; stations are never deleted (taps refer to them)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.contrib.gis.geos import Point
from django.db import transaction

from carbon.adapters.transit.models import LineStop, Station, TransitLine, TransitMode
from carbon.adapters.transit.network import haversine_m, network_changed
from carbon.models import Partner

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


class NetworkDataError(ValueError):
    """The files describe an impossible or malformed network; nothing was loaded."""


@dataclass(frozen=True)
class NetworkLoaded:
    stations: int
    lines: int
    stops: int


def transit_network_load(
    *, stations: Path | None = None, lines: Path | None = None
) -> NetworkLoaded:
    """Load stations and/or lines in one transaction, then tell every process the network
    changed. Raises NetworkDataError (nothing written) on any bad feature or row."""
    if stations is None and lines is None:
        raise NetworkDataError("give stations and/or lines")
    station_count = line_count = stop_count = 0
    try:
        with transaction.atomic():
            if stations is not None:
                station_count = _stations(Path(stations))
            if lines is not None:
                line_count, stop_count = _lines(Path(lines))
    except (AttributeError, KeyError, TypeError) as exc:
        # A feature or row of the wrong shape (not an object, short row, text where a
        # number belongs): nothing was loaded, say so plainly instead of a traceback.
        raise NetworkDataError(f"malformed input, nothing loaded: {exc!r}") from None
    except ValueError as exc:
        if isinstance(exc, NetworkDataError):
            raise
        raise NetworkDataError(f"malformed input, nothing loaded: {exc!r}") from None
    network_changed()
    return NetworkLoaded(stations=station_count, lines=line_count, stops=stop_count)


def _stations(path: Path) -> int:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NetworkDataError(f"{path}: {exc}") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise NetworkDataError(f"{path}: expected a GeoJSON FeatureCollection")
    seen: set[str] = set()
    for i, feature in enumerate(features):
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        code, name, mode = props.get("code"), props.get("name"), props.get("mode")
        where = f"{path}: feature {i} ({code or 'no code'})"
        if not code or not name:
            raise NetworkDataError(f"{where}: properties `code` and `name` are required")
        if code in seen:
            raise NetworkDataError(f"{where}: code appears twice")
        seen.add(code)
        if mode not in TransitMode.values:
            raise NetworkDataError(f"{where}: `mode` is one of {TransitMode.values}")
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise NetworkDataError(f"{where}: a Point geometry is required")
        lon, lat = float(coords[0]), float(coords[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise NetworkDataError(f"{where}: coordinates are longitude, latitude in WGS-84")
        Station.objects.update_or_create(
            code=code,
            defaults={"name": name, "mode": mode, "location": Point(lon, lat, srid=4326)},
        )
    return len(features)


def _lines(path: Path) -> tuple[int, int]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = set(LINE_COLUMNS) - set(reader.fieldnames or [])
            if missing:
                raise NetworkDataError(
                    f"{path}: missing columns {sorted(missing)}; expected {LINE_COLUMNS}"
                )
            rows = list(reader)
    except OSError as exc:
        raise NetworkDataError(f"{path}: {exc}") from None
    by_line: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for n, row in enumerate(rows, start=2):
        by_line[(row["line"] or "").strip()].append((n, row))
    stations = {s.code: s for s in Station.objects.all()}
    total = 0
    for code, numbered in by_line.items():
        if not code:
            raise NetworkDataError(f"{path}: line {numbered[0][0]}: `line` is empty")
        first = numbered[0][1]
        name, mode = first["line_name"].strip(), first["mode"].strip()
        operator_name = (first.get("operator") or "").strip()
        if mode not in TransitMode.values:
            raise NetworkDataError(f"{path}: line {code}: `mode` is one of {TransitMode.values}")
        operator = None
        if operator_name:
            operator = Partner.objects.filter(name=operator_name).first()
            if operator is None:
                raise NetworkDataError(
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
                raise NetworkDataError(
                    f"{where}: line_name, mode and operator must be the same on every row"
                )
            station = stations.get(row["station"].strip())
            if station is None:
                raise NetworkDataError(f"{where}: unknown station {row['station']!r}")
            if station.mode != mode:
                raise NetworkDataError(
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
                raise NetworkDataError(
                    f"{where}: sequence and metres_from_previous are whole numbers"
                ) from None
            if metres is not None and metres <= 0:
                raise NetworkDataError(f"{where}: metres_from_previous must be positive")
            stops.append((sequence, station, metres, where))
        stops.sort(key=lambda s: s[0])
        if len({s[0] for s in stops}) != len(stops):
            raise NetworkDataError(f"{path}: line {code}: a sequence number appears twice")
        if len({s[1].pk for s in stops}) != len(stops):
            raise NetworkDataError(f"{path}: line {code}: a station appears twice")
        if len(stops) < 2:
            raise NetworkDataError(f"{path}: line {code}: a line has at least two stops")
        if stops[0][2] is not None:
            raise NetworkDataError(f"{stops[0][3]}: the first stop has no metres_from_previous")
        for (_, prev, _, _), (_, station, metres, where) in zip(stops, stops[1:], strict=False):
            straight = haversine_m(prev.location, station.location)
            if metres is not None and metres < straight * MIN_TRACK_RATIO:
                raise NetworkDataError(
                    f"{where}: {metres} m along the line is shorter than the {straight:.0f} m "
                    f"straight line from {prev.code}"
                )
        line, _ = TransitLine.objects.update_or_create(
            code=code, defaults={"name": name, "mode": mode, "operator": operator}
        )
        LineStop.objects.filter(line=line).delete()
        LineStop.objects.bulk_create(
            [
                LineStop(line=line, station=station, sequence=sequence, metres_from_previous=metres)
                for sequence, station, metres, _ in stops
            ]
        )
        total += len(stops)
    return len(by_line), total
