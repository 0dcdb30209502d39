# Photo duplicate lookup: band rows carry the whole hash (a covering index), and the bands
# are re-cut for multi-index hashing (4 bands of 16 bits at the default distance, probed
# within a radius) instead of distance + 1 exact bands.

from django.db import migrations, models


def _signed(phash: int) -> int:
    """A 64-bit hash as PostgreSQL's (signed) bigint holds it: the column's representation
    when this migration was written, kept here as it was (a migration does not follow later
    changes of the app's code)."""
    return phash - (1 << 64) if phash >= 1 << 63 else phash


def recut_bands(apps, schema_editor):
    """Every photo's bands again, in the cut the current code and settings use (what
    carbon.adapters.photo.duplicates.photo_hash_bands_rebuild does, on the historical
    models)."""
    from carbon.adapters.photo.duplicates import hash_bands

    ClaimPhoto = apps.get_model("carbon", "ClaimPhoto")
    PhotoHashBand = apps.get_model("carbon", "PhotoHashBand")
    PhotoHashBand.objects.all().delete()
    rows = []
    for photo_id, phash_hex in ClaimPhoto.objects.values_list("pk", "phash").iterator(
        chunk_size=5000
    ):
        phash = int(phash_hex, 16)
        rows += [
            PhotoHashBand(photo_id=photo_id, band=b, value=v, phash=_signed(phash))
            for b, v in hash_bands(phash)
        ]
        if len(rows) >= 10_000:
            PhotoHashBand.objects.bulk_create(rows)
            rows = []
    PhotoHashBand.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("carbon", "0010_read_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="photohashband",
            name="photo_band_idx",
        ),
        migrations.AddField(
            model_name="photohashband",
            name="phash",
            field=models.BigIntegerField(default=0, verbose_name="perceptual hash"),
            preserve_default=False,
        ),
        migrations.RunPython(recut_bands, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="photohashband",
            index=models.Index(
                fields=["band", "value"], include=("phash", "photo"), name="photo_band_idx"
            ),
        ),
    ]
