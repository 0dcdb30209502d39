"""Storing a claim's photo (files and rows), removing files a rolled-back transaction left,
erasing a resident's photos, and reading one for its owner."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from carbon.adapters.photo.duplicates import photo_band_rows
from carbon.adapters.photo.images import InspectedPhoto
from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
from carbon.models import Claim, User

log = logging.getLogger(__name__)


# --- storing ----------------------------------------------------------------------------


def photo_store(
    *, claim: Claim, inspected: InspectedPhoto, review_facts: dict[str, Any] | None = None
) -> ClaimPhoto:
    """Write the re-encoded image and thumbnail and the photo's rows, with the facts only
    reviewers see (`review_facts`: the photo it may copy). Call inside the
    claim's transaction. Files already written are removed if anything here fails; for a
    failure later in the transaction, see photo_files_discard and photo_orphans_purge."""
    photo = ClaimPhoto(
        claim=claim,
        original_format=inspected.original_format,
        original_bytes=inspected.original_bytes,
        sha256=inspected.sha256,
        phash=inspected.phash_hex,
        taken_at=inspected.taken_at,
        gps=inspected.gps,
        exif=inspected.exif,
        review_facts=review_facts or {},
    )
    try:
        # Named ContentFiles: ImageField reads the dimensions from the file it is given,
        # and an unnamed one counts as empty.
        photo.image.save(
            "photo.jpg", ContentFile(inspected.image_jpeg, name="photo.jpg"), save=False
        )
        inspected.stored_files.append(photo.image.name)
        photo.thumbnail.save(
            "thumbnail.jpg", ContentFile(inspected.thumbnail_jpeg, name="thumbnail.jpg"), save=False
        )
        inspected.stored_files.append(photo.thumbnail.name)
        photo.save()
        PhotoHashBand.objects.bulk_create(photo_band_rows(photo_id=photo.pk, phash=inspected.phash))
    except BaseException:
        photo_files_discard(inspected=inspected)
        raise
    return photo


def photo_files_discard(*, inspected: InspectedPhoto) -> None:
    """Remove the files written for a photo whose transaction did not commit."""
    while inspected.stored_files:
        name = inspected.stored_files.pop()
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not delete %s after a failed photo claim", name, exc_info=True)


def photo_orphans_purge(*, older_than: timedelta = timedelta(hours=1)) -> int:
    """Delete stored photo files that no ClaimPhoto refers to: left by a transaction that
    rolled back after the files were written (or a process that died). Files younger than
    `older_than` may belong to a transaction still running and are left alone.
    Meant for a periodic job. Returns the number of files deleted."""
    cutoff = timezone.now() - older_than
    storage = default_storage
    try:
        claim_dirs, _ = storage.listdir("claims")
    except FileNotFoundError:
        return 0
    deleted = 0
    for start in range(0, len(claim_dirs), 500):
        batch = claim_dirs[start : start + 500]
        referenced: set[str] = set()
        for image, thumbnail in ClaimPhoto.objects.filter(
            claim_id__in=[d for d in batch if _is_uuid(d)]
        ).values_list("image", "thumbnail"):
            referenced.update((image, thumbnail))
        for directory in batch:
            _, files = storage.listdir(f"claims/{directory}")
            for name in files:
                path = f"claims/{directory}/{name}"
                if path in referenced or storage.get_modified_time(path) > cutoff:
                    continue
                storage.delete(path)
                deleted += 1
    return deleted


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def photos_erase_for_user(*, user: User) -> int:
    """Delete a resident's photos, their private EXIF and GPS, and their files (account
    erasure). The claims stay, as the ledger refers to them. Returns photos deleted."""
    photos = ClaimPhoto.objects.filter(claim__user=user)
    pairs = list(photos.values_list("image", "thumbnail"))
    photos.delete()  # the hash bands go with them (CASCADE)

    def remove_files() -> None:
        for name in (n for pair in pairs for n in pair if n):
            default_storage.delete(name)

    # Files go once the deletion is committed, so a rollback leaves photo and files together.
    transaction.on_commit(remove_files)
    return len(pairs)


# --- reading ----------------------------------------------------------------------------


def photo_for_owner(*, user: User, claim_id: Any) -> ClaimPhoto:
    """The photo of one of the caller's claims; ClaimPhoto.DoesNotExist for anyone else's."""
    return ClaimPhoto.objects.get(claim__in=Claim.objects.owned_by(user), claim_id=claim_id)
