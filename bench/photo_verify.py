"""How many photos per second the photo adapter verifies: decode, EXIF, re-encode, hash, and
the duplicate lookup against 100,000 stored hashes; with a baseline of plain Pillow decode +
perceptual hash (no checks, no re-encode, no database) and the ratio between the two.

    .venv/bin/python bench/photo_verify.py                       # SpatiaLite, a temp file
    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \\
        .venv/bin/python bench/photo_verify.py                   # PostgreSQL, its own database

Runs on its own database: a temporary SpatiaLite file, or `carbon_bench_photo` created on the
PostgreSQL server DATABASE_URL points at (dropped afterwards unless --keep).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = "carbon_bench_photo"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--photos", type=int, default=30, help="distinct photos to verify (default 30)")
    p.add_argument("--rounds", type=int, default=2, help="passes over the photos (default 2)")
    p.add_argument(
        "--stored", type=int, default=100_000, help="stored photo hashes (default 100,000)"
    )
    p.add_argument("--size", default="4032x3024", help="photo size, WxH (default 4032x3024, 12 MP)")
    p.add_argument("--keep", action="store_true", help="keep the bench database")
    p.add_argument("--explain", action="store_true", help="print the lookup's query plan")
    return p.parse_args()


def setup_database(args) -> tuple[str, callable]:
    """Point DATABASE_URL at a fresh bench database; return a description and a cleanup."""
    import environ

    url = os.environ.get("DATABASE_URL", "")
    tmp = Path(tempfile.mkdtemp(prefix="photo-bench-"))
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["VAR_DIR"] = str(tmp)
    if url.startswith(("postgis://", "postgres://", "postgresql://")):
        import psycopg

        cfg = environ.Env.db_url_config(url)
        server = dict(
            host=cfg["HOST"] or None,
            port=cfg["PORT"] or None,
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname=cfg["NAME"],
            autocommit=True,
        )
        with psycopg.connect(**server) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        scheme, rest = url.split("://", 1)
        base = rest.rsplit("/", 1)[0]
        os.environ["DATABASE_URL"] = f"{scheme}://{base}/{BENCH_DB}"

        def cleanup():
            from django.db import connections

            connections.close_all()
            if not args.keep:
                with psycopg.connect(**server) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
            shutil.rmtree(tmp, ignore_errors=True)

        return f"PostgreSQL ({BENCH_DB} on {cfg['HOST']}:{cfg['PORT']})", cleanup

    db = tmp / "bench.sqlite3"
    os.environ["DATABASE_URL"] = f"spatialite:///{db}"

    def cleanup():
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept {db}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    return f"SpatiaLite ({db})", cleanup


def fill_hashes(n: int) -> float:
    """n stored photos of other residents with random 64-bit hashes and their bands, in bulk."""
    from datetime import timedelta
    from decimal import Decimal

    from django.db import transaction
    from django.utils import timezone

    from carbon.adapters.photo.duplicates import hash_bands
    from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
    from carbon.models import Behaviour, Claim, User

    started = time.perf_counter()
    rnd = random.Random(42)
    user = User.objects.create_user(email="bench@example.org", password=None, display_name="Bench")
    behaviour = Behaviour.objects.create(
        code="bench-photo",
        name="Bench photo",
        category="consumption",
        unit="use",
        evidence_types=["photo"],
        max_quantity=Decimal("5"),
        claim_window_days=3,
    )
    now = timezone.now()
    batch = 5000
    for start in range(0, n, batch):
        size = min(batch, n - start)
        with transaction.atomic():
            claims = Claim.objects.bulk_create(
                [
                    Claim(
                        id=uuid.UUID(int=rnd.getrandbits(128), version=4),
                        user=user,
                        behaviour=behaviour,
                        quantity=Decimal("1"),
                        occurred_at=now - timedelta(days=1),
                        evidence_type="photo",
                        idempotency_key=f"bench-{start + i}",
                        request_hash="-",
                        status="rejected",
                    )
                    for i in range(size)
                ]
            )
            photos = ClaimPhoto.objects.bulk_create(
                [
                    ClaimPhoto(
                        claim=c,
                        image=f"claims/{c.pk}/photo.jpg",
                        thumbnail=f"claims/{c.pk}/thumbnail.jpg",
                        width=2048,
                        height=1536,
                        original_format="JPEG",
                        original_bytes=3_000_000,
                        sha256=f"{rnd.getrandbits(256):064x}",
                        phash=f"{rnd.getrandbits(64):016x}",
                    )
                    for c in claims
                ]
            )
            PhotoHashBand.objects.bulk_create(
                [
                    PhotoHashBand(photo=p, band=b, value=v)
                    for p in photos
                    for b, v in hash_bands(int(p.phash, 16))
                ],
                batch_size=10_000,
            )
    return time.perf_counter() - started


def make_photos(count: int, size: tuple[int, int]) -> list[bytes]:
    """Phone-like JPEGs: busy content with sensor-like noise, EXIF capture time and GPS."""
    import io
    from datetime import timedelta

    from django.utils import timezone
    from PIL import Image

    from tests.carbon.photo_samples import LAT, LON, exif_for, picture

    out = []
    for seed in range(count):
        img = picture(1000 + seed, size)
        noise = Image.effect_noise(size, 30).convert("RGB")
        img = Image.blend(img, noise, 0.12)
        buf = io.BytesIO()
        img.save(
            buf,
            "JPEG",
            quality=92,
            exif=exif_for(timezone.now() - timedelta(hours=1), gps=(LAT, LON)),
        )
        out.append(buf.getvalue())
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    args = parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    where, cleanup = setup_database(args)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    try:
        run(args, where, (w, h))
    finally:
        cleanup()


def run(args, where: str, size: tuple[int, int]) -> None:
    import hashlib
    import io
    from datetime import timedelta

    import imagehash
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Q
    from django.utils import timezone
    from PIL import Image

    from carbon.adapters.photo import duplicates, images
    from carbon.adapters.photo.models import ClaimPhoto, PhotoHashBand
    from carbon.adapters.photo.verifier import PhotoVerifier

    def band_query(phash: int) -> Q:
        """The lookup's WHERE clause, as photo_duplicates_find builds it."""
        q = Q()
        for b, v in duplicates.hash_bands(phash):
            q |= Q(band=b, value=v)
        return q

    print(f"database: {where}")
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated in {time.perf_counter() - t:.1f} s")
    fill_s = fill_hashes(args.stored)
    print(
        f"stored {args.stored:,} photo hashes ({PhotoHashBand.objects.count():,} band rows, "
        f"{len(duplicates.hash_bands(0))} bands for distance {settings.PHOTO_DUPLICATE_DISTANCE}) "
        f"in {fill_s:.1f} s"
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")

    data = make_photos(args.photos, size)
    mean_bytes = statistics.mean(len(d) for d in data)
    print(
        f"{args.photos} photos of {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} MP), "
        f"JPEG q92, mean {mean_bytes / 1e6:.2f} MB; {args.rounds} rounds\n"
    )

    # Warm-up: first imports (scipy for the DCT), first queries.
    images.photo_inspect(data=data[0])
    duplicates.photo_duplicates_find(phash=0, sha256="")

    # Correctness check: a stored hash 3 bits from photo 0 must be found among the 100k.
    probe = images.photo_inspect(data=data[0])

    # 1. Stage by stage, through the service's own functions.
    stages: dict[str, list[float]] = {
        k: []
        for k in (
            "open+checks",
            "exif",
            "decode+orient+scale",
            "thumbnail+phash+sha256",
            "encode jpegs",
            "duplicate lookup",
        )
    }
    candidates: list[int] = []
    now = timezone.now()
    for _ in range(args.rounds):
        for blob in data:
            t0 = time.perf_counter()
            img = images.photo_open(data=blob)
            t1 = time.perf_counter()
            images.photo_metadata(img=img, now=now)
            t2 = time.perf_counter()
            decoded = images.photo_decode(img=img)
            t3 = time.perf_counter()
            thumbnail = images.photo_thumbnail(img=decoded)
            phash = images.photo_phash(img=thumbnail)
            sha = hashlib.sha256(blob).hexdigest()
            t4 = time.perf_counter()
            images.photo_encode(img=decoded, thumbnail=thumbnail)
            t5 = time.perf_counter()
            duplicates.photo_duplicates_find(phash=phash, sha256=sha, now=now)
            t6 = time.perf_counter()
            for k, v in zip(
                stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True
            ):
                stages[k].append(v)
            candidates.append(PhotoHashBand.objects.filter(band_query(phash)).count())

    print("per photo, by stage (ms)      mean     p50     p95")
    total = 0.0
    for k, v in stages.items():
        total += statistics.mean(v)
        mean, p50, p95 = statistics.mean(v) * 1e3, pct(v, 0.5) * 1e3, pct(v, 0.95) * 1e3
        print(f"  {k:<26} {mean:7.2f} {p50:7.2f} {p95:7.2f}")
    print(f"  {'total':<26} {total * 1e3:7.2f}")
    print(
        f"  lookup candidates (band rows per photo): mean {statistics.mean(candidates):.0f}, "
        f"max {max(candidates)}"
    )

    # 2. End to end: PhotoVerifier.prepare (what claim_submit runs) + the duplicate lookup.
    verifier = PhotoVerifier()
    n = 0
    t = time.perf_counter()
    for _ in range(args.rounds):
        for blob in data:
            prepared = verifier.prepare(
                user=None,
                evidence={},
                files={"photo": SimpleUploadedFile("p.jpg", blob, content_type="image/jpeg")},
            )
            ins = prepared.payload
            duplicates.photo_duplicates_find(phash=ins.phash, sha256=ins.sha256)
            n += 1
    pipeline = n / (time.perf_counter() - t)

    # 3. Baselines: plain Pillow decode + perceptual hash, nothing else; once at full size,
    #    once with the same DCT-scaled JPEG decode the adapter uses.
    def baseline_rate(draft: bool) -> float:
        n = 0
        t = time.perf_counter()
        for _ in range(args.rounds):
            for blob in data:
                with Image.open(io.BytesIO(blob)) as img:
                    if draft and max(img.size) >= 2 * images.DRAFT_MIN_SIDE:
                        s = images.DRAFT_MIN_SIDE / max(img.size)
                        img.draft("RGB", (int(img.width * s) + 1, int(img.height * s) + 1))
                    img.load()
                    imagehash.phash(img)
                n += 1
        return n / (time.perf_counter() - t)

    baseline = baseline_rate(draft=False)
    baseline_draft = baseline_rate(draft=True)

    # 4. Lookup alone, against the stored hashes (random probes).
    rnd = random.Random(7)
    lookups = []
    for _ in range(300):
        h = rnd.getrandbits(64)
        t0 = time.perf_counter()
        duplicates.photo_duplicates_find(phash=h, sha256="")
        lookups.append(time.perf_counter() - t0)

    # A planted near-duplicate (3 bits off) is found.
    any_photo = ClaimPhoto.objects.order_by("pk").first()
    planted = probe.phash ^ 0b1000000000100000000001
    ClaimPhoto.objects.filter(pk=any_photo.pk).update(phash=f"{planted:016x}")
    PhotoHashBand.objects.filter(photo=any_photo).delete()
    PhotoHashBand.objects.bulk_create(
        [PhotoHashBand(photo=any_photo, band=b, value=v) for b, v in duplicates.hash_bands(planted)]
    )
    found = duplicates.photo_duplicates_find(phash=probe.phash, sha256=probe.sha256)
    assert found and found[0].claim_id == any_photo.claim_id and found[0].distance == 3, found

    print(
        f"\nlookup alone ({args.stored:,} stored): mean {statistics.mean(lookups) * 1e3:.2f} ms, "
        f"p95 {pct(lookups, 0.95) * 1e3:.2f} ms ({1 / statistics.mean(lookups):,.0f} lookups/s); "
        "planted 3-bit near-duplicate found"
    )
    print(f"\nphotos verified per second (prepare + lookup): {pipeline:6.1f}")
    print(
        f"baseline: Pillow full decode + phash only:     {baseline:6.1f}   "
        f"(ratio {pipeline / baseline:.2f})"
    )
    print(
        f"baseline: Pillow scaled decode + phash only:   {baseline_draft:6.1f}   "
        f"(ratio {pipeline / baseline_draft:.2f})"
    )

    if args.explain:
        since = timezone.now() - timedelta(days=settings.PHOTO_DUPLICATE_LOOKBACK_DAYS)
        qs = PhotoHashBand.objects.filter(
            band_query(probe.phash), photo__uploaded_at__gte=since
        ).values_list(
            "photo_id", "photo__claim_id", "photo__phash", "photo__sha256", "photo__uploaded_at"
        )
        print("\nquery plan:\n" + qs.explain())


if __name__ == "__main__":
    main()
