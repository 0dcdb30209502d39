"""The biodiversity app's periodic jobs (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task


@shared_task
def rebuild_map_grid() -> int:
    from biodiversity.maps.grid import map_grid_rebuild

    return map_grid_rebuild()
