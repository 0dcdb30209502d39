"""The transit network (stations, lines, stops) as a graph: built once per process, rebuilt
when the data changes, and used to price trips along the track."""

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Sum

from carbon.adapters.transit.models import (
    LineStop,
    Station,
    TransitLine,
    TransitMode,
)

log = logging.getLogger(__name__)


NETWORK_VERSION_KEY = "transit:network-version"


def haversine_m(a: Any, b: Any) -> float:
    """Great-circle metres between two WGS-84 points (x = longitude, y = latitude)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a.x, a.y, b.x, b.y))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class StationInfo:
    id: int
    code: str
    name: str
    mode: str
    location: Any


@dataclass(frozen=True)
class LineInfo:
    id: int
    code: str
    mode: str
    operator_id: int | None
    # station id -> metres from the line's first stop
    chainage: dict[int, float]


@dataclass
class Network:
    """The network as one process sees it: lookups for ingestion and the metro graph."""

    version: tuple
    stations: dict[str, StationInfo]
    stations_by_id: dict[int, StationInfo]
    lines: dict[str, LineInfo]
    lines_by_id: dict[int, LineInfo]
    graph: nx.Graph
    # station id -> the operators of the lines serving it (None for a line with no operator)
    station_operators: dict[int, frozenset[int | None]]
    _paths: dict[tuple[int, int], tuple[float, list[int]] | None] = field(default_factory=dict)

    def route(self, entry_id: int, exit_id: int) -> tuple[float, list[int]] | None:
        """Shortest metres along the metro network and the stations on the way, or None."""
        key = (entry_id, exit_id)
        if key not in self._paths:
            try:
                length, path = nx.single_source_dijkstra(
                    self.graph, entry_id, exit_id, weight="weight"
                )
                self._paths[key] = (float(length), list(path))
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                self._paths[key] = None
        return self._paths[key]

    def operates_station(self, station_id: int, operator_id: int) -> bool:
        """Whether the operator runs a line through the station. A line with no operator is
        nobody's: its stations take no taps until the line names its operator, so a second
        operator cannot be credited for them."""
        return operator_id in self.station_operators.get(station_id, ())

    def along_line(self, line_id: int, a: int, b: int) -> float | None:
        line = self.lines_by_id.get(line_id)
        if line is None or a not in line.chainage or b not in line.chainage:
            return None
        return abs(line.chainage[b] - line.chainage[a])

    def shortest_hop_m(self, station_id: int, line_id: int | None = None) -> float | None:
        """The shortest ride from a station: a lower bound when only one end is known."""
        if line_id is not None:
            line = self.lines_by_id.get(line_id)
            if line is None or station_id not in line.chainage:
                return None
            here = line.chainage[station_id]
            hops = [abs(here - c) for s, c in line.chainage.items() if s != station_id]
            return min(hops) if hops else None
        if station_id not in self.graph:
            return None
        weights = [d["weight"] for _, _, d in self.graph.edges(station_id, data=True)]
        return min(weights) if weights else None


_network: Network | None = None


def network_changed() -> None:
    """Tell every process that the network data changed (the loader and the admin call it)."""
    try:
        cache.incr(NETWORK_VERSION_KEY)
    except ValueError:
        cache.set(NETWORK_VERSION_KEY, 1, None)


def _network_version() -> tuple:
    # Row counts, highest ids and the sum of track lengths catch loads and most edits; the
    # cache counter catches the rest (coordinates edited in the admin).
    stops = LineStop.objects.aggregate(n=Count("id"), m=Max("id"), s=Sum("metres_from_previous"))
    stations = Station.objects.aggregate(n=Count("id"), m=Max("id"))
    lines = TransitLine.objects.aggregate(n=Count("id"), m=Max("id"))
    return (
        connection.settings_dict["NAME"],
        tuple(stops.values()),
        tuple(stations.values()),
        tuple(lines.values()),
        cache.get(NETWORK_VERSION_KEY, 0),
    )


def network(*, fresh: bool = True) -> Network:
    """The cached network; with fresh=True (once per batch) it is checked against the data."""
    global _network
    if _network is not None and not fresh:
        return _network
    version = _network_version()
    if _network is not None and _network.version == version:
        return _network
    stations = {
        s.id: StationInfo(s.id, s.code, s.name, s.mode, s.location) for s in Station.objects.all()
    }
    stops_by_line: dict[int, list[LineStop]] = defaultdict(list)
    for stop in LineStop.objects.order_by("line_id", "sequence"):
        stops_by_line[stop.line_id].append(stop)
    graph = nx.Graph()
    lines: dict[int, LineInfo] = {}
    for line in TransitLine.objects.all():
        chainage: dict[int, float] = {}
        run = 0.0
        previous: LineStop | None = None
        for stop in stops_by_line.get(line.id, []):
            if previous is not None:
                metres = (
                    float(stop.metres_from_previous)
                    if stop.metres_from_previous is not None
                    else haversine_m(
                        stations[previous.station_id].location, stations[stop.station_id].location
                    )
                )
                run += metres
                if line.mode == TransitMode.METRO:
                    a, b = previous.station_id, stop.station_id
                    # Two lines sharing a stretch of track: the shorter figure wins.
                    if not graph.has_edge(a, b) or graph[a][b]["weight"] > metres:
                        graph.add_edge(a, b, weight=metres)
            chainage[stop.station_id] = run
            previous = stop
        lines[line.id] = LineInfo(line.id, line.code, line.mode, line.operator_id, chainage)
    operators: dict[int, set[int | None]] = defaultdict(set)
    for line in lines.values():
        for station_id in line.chainage:
            operators[station_id].add(line.operator_id)
    _network = Network(
        version=version,
        stations={s.code: s for s in stations.values()},
        stations_by_id=stations,
        lines={line.code: line for line in lines.values()},
        lines_by_id=lines,
        graph=graph,
        station_operators={s: frozenset(ops) for s, ops in operators.items()},
    )
    return _network


def forget_network() -> None:
    global _network
    _network = None
