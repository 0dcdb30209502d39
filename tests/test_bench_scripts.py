"""The benchmark scripts run as `python bench/<name>.py`, which puts bench/ first on the
import path: a file there named like a standard-library module (bench/http.py once) shadows
that module for every script, and Django fails to import."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_no_bench_script_shadows_a_standard_library_module():
    names = {p.stem for p in BENCH.glob("*.py")} | {p.name for p in BENCH.iterdir() if p.is_dir()}
    assert names, "bench/ has no scripts"
    assert sorted(names & set(sys.stdlib_module_names)) == []
