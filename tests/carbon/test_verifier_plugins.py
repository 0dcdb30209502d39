"""Adapters from other packages are found through the `carbon.verifiers` entry points.

The example package examples/carbon-verifier-example is installed by the test setup (a
path dependency in pyproject.toml) as its own distribution; nothing in the core names it.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from carbon.models import Claim
from carbon.verifiers import get_verifier, registry
from tests.carbon.api_helpers import assert_error, claim_payload
from tests.carbon.factories import catalogue_behaviour


@pytest.fixture
def walking(db):
    """The catalogue's walking (24.7 g/km, at most 296 g a day), with step counts from the
    example plugin as its evidence."""
    return catalogue_behaviour("walking", evidence_types=["steps", "self"])


def test_the_example_package_is_discovered_without_touching_settings(settings):
    assert "steps" not in settings.CARBON_VERIFIERS
    assert "steps" in {ep.name for ep in entry_points(group="carbon.verifiers")}
    verifier = get_verifier("steps")
    assert type(verifier).__module__ == "carbon_steps_verifier"
    assert {"self", "transit", "photo", "partner", "steps"} <= set(registry())


def test_a_claim_with_plugin_evidence_runs_the_same_rules(auth_api, walking, ledger_is_consistent):
    response = auth_api.post(
        "/api/v1/claims",
        claim_payload(
            "walking", "8", evidence={"type": "steps", "steps": 11000, "source": "pedometer"}
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "credited"
    assert body["receipt"]["steps"][0]["code"] == "steps_counted"
    assert body["credited_g"] == 98  # 8 km x 24.7 g at the self tier (50%)
    ledger_is_consistent()


def test_plugin_verdicts_and_input_errors(auth_api, walking):
    mismatch = auth_api.post(
        "/api/v1/claims",
        claim_payload("walking", "30", evidence={"type": "steps", "steps": 2000}),
        format="json",
    )
    assert mismatch.json()["status"] == "needs_review"
    bad = auth_api.post(
        "/api/v1/claims",
        claim_payload("walking", "3", evidence={"type": "steps", "steps": "many"}),
        format="json",
    )
    assert_error(bad, 400, "evidence_not_accepted")
    assert Claim.objects.count() == 1


def test_a_broken_entry_point_does_not_take_the_registry_down(monkeypatch):
    import carbon.verifiers as verifiers

    class Broken:
        name = "broken"

        def load(self):
            raise ImportError("missing dependency")

    real = verifiers.entry_points
    monkeypatch.setattr(verifiers, "entry_points", lambda group: [*real(group=group), Broken()])
    verifiers.reset_registry()
    assert "broken" not in verifiers.registry()
    assert "steps" in verifiers.registry()
