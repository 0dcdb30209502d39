"""The photo adapter: a picture of the act (sorted waste, own bag, bamboo instead of plastic).

prepare() checks the upload and makes the metadata-free copy, before any write; verify()
searches every resident's recent photos for the same picture, stores this one with the
claim, and decides: refused, sent to a reviewer, or verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.adapters.photo import duplicates, images, storage
from carbon.errors import EvidenceNotAccepted
from carbon.services.rules import window_problem
from carbon.verifiers import PreparedEvidence, Verdict

MAX_NOTE = 500


class PhotoVerifier:
    tier = "photo"
    accepts_from_resident = True

    def prepare(
        self, *, user: Any, evidence: dict[str, Any], files: Mapping[str, UploadedFile]
    ) -> PreparedEvidence:
        if set(files) != {"photo"}:
            raise EvidenceNotAccepted(
                _("Photo evidence takes exactly one file, in the form field `photo`."),
                details={"files": sorted(files)},
            )
        note = evidence.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise EvidenceNotAccepted(
                _("Photo evidence takes an optional note of at most %(max)d characters.")
                % {"max": MAX_NOTE},
                details={"field": "evidence.note"},
            )
        unknown = sorted(set(evidence) - {"type", "note"})
        if unknown:
            raise EvidenceNotAccepted(
                _("Unknown evidence fields for a photo."), details={"fields": unknown}
            )

        upload = files["photo"]
        # Refuse by the size Django measured before reading it into memory.
        if upload.size is not None:
            images.photo_size_check(size=upload.size)
        upload.seek(0)
        data = upload.read(settings.PHOTO_MAX_BYTES + 1)
        upload.seek(0)
        # The file name and the client's declared content type are not looked at: the
        # format is what the bytes say (a PNG called photo.jpg is a PNG, a text file sent
        # as image/jpeg is refused).
        inspected = images.photo_inspect(data=data, now=timezone.now())
        prepared_evidence = inspected.evidence()
        if note:
            prepared_evidence["note"] = note
        return PreparedEvidence(
            evidence=prepared_evidence, payload=inspected, occurred_at=inspected.taken_at
        )

    def verify(self, *, claim, prepared: PreparedEvidence) -> Verdict:
        inspected: images.InspectedPhoto = prepared.payload
        now = claim.submitted_at or timezone.now()
        duplicates.photo_duplicate_lock(
            phash=inspected.phash, symmetry_hashes=inspected.symmetry_hashes
        )
        matches = duplicates.photo_duplicates_find(
            phash=inspected.phash,
            sha256=inspected.sha256,
            now=now,
            symmetry_hashes=inspected.symmetry_hashes,
        )
        nearest = matches[0] if matches else None
        # Which photo it may copy is for reviewers (the admin shows both side by side): the
        # other claim belongs to someone else, so the resident's receipt never names it.
        review_facts = (
            {
                "duplicate_of_claim": str(nearest.claim_id),
                "distance": nearest.distance,
                "same_file": nearest.same_file,
                "transform": nearest.transform,
            }
            if nearest is not None
            else {}
        )
        # Kept whatever the verdict: a reviewer or an appeal needs to see what was sent.
        storage.photo_store(claim=claim, inspected=inspected, review_facts=review_facts)
        return self._verdict(claim=claim, inspected=inspected, nearest=nearest, now=now)

    def discard(self, *, prepared: PreparedEvidence) -> None:
        """Remove files verify() wrote, when the claim's transaction did not commit."""
        if isinstance(prepared.payload, images.InspectedPhoto):
            storage.photo_files_discard(inspected=prepared.payload)

    def _verdict(
        self,
        *,
        claim,
        inspected: images.InspectedPhoto,
        nearest: duplicates.DuplicateMatch | None,
        now,
    ) -> Verdict:
        lookback = settings.PHOTO_DUPLICATE_LOOKBACK_DAYS
        if nearest is not None:
            # Only that it is a duplicate: no other claim, no distance, nothing to probe with.
            facts = {"duplicate": True}
            if nearest.same_file or nearest.distance <= duplicates.SAME_PICTURE_DISTANCE:
                return Verdict(
                    outcome="rejected",
                    code="duplicate_photo",
                    reason=f"This photo is a duplicate: it was already used for a claim in the "
                    f"last {lookback} days, and a photo earns once.",
                    facts=facts,
                )
        taken = inspected.taken_at
        if taken is not None:
            problem = window_problem(behaviour=claim.behaviour, occurred_at=taken, reference=now)
            if problem:
                return Verdict(
                    outcome="rejected",
                    code="capture_time_outside_window",
                    reason=f"The photo was taken on {timezone.localtime(taken):%Y-%m-%d %H:%M}; "
                    f"photos for {claim.behaviour.name} must be taken within the last "
                    f"{claim.behaviour.claim_window_days} days.",
                    facts={"taken_at": taken.isoformat()},
                )
        if nearest is not None:
            return Verdict(
                outcome="needs_review",
                code="possible_duplicate_photo",
                reason="This photo may be a duplicate of one already used for a claim; a "
                "reviewer will compare them.",
                facts=facts,
            )
        if taken is None:
            return Verdict(
                outcome="needs_review",
                code="no_capture_time",
                reason="The photo carries no capture time (EXIF); a reviewer will check it.",
            )
        return Verdict(
            outcome="verified",
            code="photo_checked",
            reason=f"Photo taken {timezone.localtime(taken):%Y-%m-%d %H:%M}; no earlier use found.",
            facts={"taken_at": taken.isoformat()},
        )
