"""An offer's picture, uploaded by an administrator: put through the core's image pipeline
(content-sniffed format, size and pixel limits, re-encoded without any metadata)."""

from __future__ import annotations

from django.core.files.base import ContentFile

from carbon.adapters.photo.images import photo_inspect


def offer_image_prepare(*, data: bytes) -> ContentFile:
    """The JPEG we keep for an upload; raises the pipeline's DomainError for a refused one."""
    inspected = photo_inspect(data=data)
    return ContentFile(inspected.image_jpeg, name="offer.jpg")
