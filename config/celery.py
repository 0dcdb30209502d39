"""The Celery app; tasks live in each app's tasks.py and call its services."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Feature apps' slices keep their jobs next to them (rewards/offsets/tasks.py).
app.autodiscover_tasks(["rewards.offsets"])
