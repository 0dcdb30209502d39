"""Sightings, expert verification and the map: not built yet (a later issue)."""
