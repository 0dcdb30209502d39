"""The project as a whole: demo data, admin pages, API docs, periodic jobs."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from carbon.models import Behaviour, Claim, EmissionFactor, Partner, Transfer, User
from config.celery import app as celery_app


def test_seed_demo_is_idempotent_and_keeps_the_ledger_consistent(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert "secret" in first  # partner secrets are shown on creation...
    counts = (
        User.objects.count(),
        Partner.objects.count(),
        Behaviour.objects.count(),
        EmissionFactor.objects.count(),
        Claim.objects.count(),
        Transfer.objects.count(),
    )
    call_command("seed_demo")
    assert "secret" not in capsys.readouterr().out  # ...and never again
    assert counts == (
        User.objects.count(),
        Partner.objects.count(),
        Behaviour.objects.count(),
        EmissionFactor.objects.count(),
        Claim.objects.count(),
        Transfer.objects.count(),
    )
    assert Behaviour.objects.count() >= 12
    assert set(Behaviour.objects.values_list("category", flat=True)) == {
        "green_travel",
        "waste",
        "consumption",
        "energy",
    }
    assert all(f.methodology and f.source for f in EmissionFactor.objects.all())
    call_command("ledger_check")


def test_every_admin_page_opens(admin_client):
    call_command("seed_demo")
    from django.contrib import admin

    for model in admin.site._registry:
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        response = admin_client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        obj = model._default_manager.first()
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client.get(change).status_code == 200, change


def test_schema_and_offline_docs(db):
    client = Client()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/claims" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    # The docs page loads its assets from our own static files, not a CDN.
    assert b"cdn.jsdelivr" not in docs.content and b"drf_spectacular_sidecar" in docs.content


def test_every_periodic_job_names_a_registered_task(db):
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks, entry["task"]
        celery_app.tasks[entry["task"]].apply().get()  # runs on an empty database


def test_unknown_urls_answer_json_errors(db):
    response = Client().get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_openapi_schema_generates_without_warnings(db, tmp_path):
    call_command(
        "spectacular", "--fail-on-warn", "--validate", "--file", str(tmp_path / "schema.yml")
    )
    assert (tmp_path / "schema.yml").read_text().startswith("openapi:")


def test_seed_demo_runs_what_feature_apps_registered_after_the_core(db, monkeypatch):
    from carbon import demo_data

    seen = []
    monkeypatch.setattr(demo_data, "_seeders", dict(demo_data._seeders))
    demo_data.register(
        demo_data.DemoSeeder(
            name="test.probe",
            # The core's residents exist by the time a feature app's seeder runs.
            seed=lambda stdout: seen.append(
                User.objects.filter(email__endswith="demo.carbon.city").count()
            ),
        )
    )
    with pytest.raises(ValueError):
        demo_data.register(demo_data.DemoSeeder(name="test.probe", seed=lambda stdout: None))
    call_command("seed_demo", stdout=io.StringIO())
    assert seen and seen[0] >= 3
