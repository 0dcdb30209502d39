"""The error catalogue: every code the API can answer, each with its one HTTP status and a
default message (`ErrorCode`), and `DomainError`, which services raise with one of them.

Error classes may live next to the slice that raises them; their codes live here, so a code
can never mean two statuses. Feature apps add their codes to this enum too.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Any, ClassVar

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@unique
class ErrorCode(StrEnum):
    """A stable machine-readable code (the value, part of the API contract), its HTTP status
    and the message used when the raiser gives none."""

    status: int
    #: Translated lazily: rendered in the language of the request that reads it.
    default_message: Promise

    def __new__(cls, code: str, status: int, default_message: Promise):
        member = str.__new__(cls, code)
        member._value_ = code
        member.status = status
        member.default_message = default_message
        return member

    # --- the request itself (DRF, Django and the ASGI body limit) --------------------------
    BAD_REQUEST = "bad_request", 400, _("Bad request.")
    MALFORMED_REQUEST = "malformed_request", 400, _("The request body could not be parsed.")
    INVALID = "invalid", 400, _("The request is not valid; see details.")
    AUTHENTICATION_FAILED = (
        "authentication_failed",
        401,
        _("The credentials or the token are wrong, expired or of the wrong kind."),
    )
    NOT_AUTHENTICATED = "not_authenticated", 401, _("Authentication credentials were not provided.")
    PERMISSION_DENIED = (
        "permission_denied",
        403,
        _("You do not have permission to perform this action."),
    )
    NOT_FOUND = "not_found", 404, _("Not found.")
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, _("This method is not allowed here.")
    NOT_ACCEPTABLE = "not_acceptable", 406, _("No answer in the format the Accept header asks for.")
    REQUEST_TOO_LARGE = "request_too_large", 413, _("The request body is too large.")
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, _("This content type is not accepted.")
    THROTTLED = "throttled", 429, _("Too many requests; retry later.")
    SERVER_ERROR = (
        "server_error",
        500,
        _("Something went wrong on our side; nothing was changed."),
    )

    # --- ledger ----------------------------------------------------------------------------
    IDEMPOTENCY_CONFLICT = (
        "idempotency_conflict",
        409,
        _("This idempotency key was already used with a different request."),
    )
    INSUFFICIENT_BALANCE = (
        "insufficient_balance",
        409,
        _("Not enough available grams for this spend."),
    )
    PENDING_ALREADY_RESOLVED = (
        "pending_already_resolved",
        409,
        _("This hold was already posted or voided."),
    )
    HOLD_EXPIRED = (
        "hold_expired",
        409,
        _("This hold timed out and was released; its grams are available again."),
    )
    NOT_PENDING = "not_pending", 409, _("This transfer is not a pending hold.")
    INVALID_AMOUNT = "invalid_amount", 400, _("Amounts are positive whole grams.")
    NOTHING_TO_REVERSE = (
        "nothing_to_reverse",
        409,
        _("Nothing is left to reverse on this transfer."),
    )

    # --- catalogue, claims and appeals -----------------------------------------------------
    UNKNOWN_BEHAVIOUR = "unknown_behaviour", 400, _("No active behaviour has this code.")
    INVALID_FACTOR = "invalid_factor", 400, _("This emission factor cannot be published.")
    INVALID_QUANTITY = "invalid_quantity", 400, _("The quantity is not one this behaviour accepts.")
    OUTSIDE_CLAIM_WINDOW = (
        "outside_claim_window",
        400,
        _("The act is outside the behaviour's claim window."),
    )
    EVIDENCE_NOT_ACCEPTED = "evidence_not_accepted", 400, _("The evidence was not accepted.")
    INVALID_REVIEW = "invalid_review", 409, _("This claim cannot be reviewed that way now.")
    APPEAL_NOT_ALLOWED = "appeal_not_allowed", 409, _("This appeal cannot be made.")
    APPEAL_LIMIT_REACHED = (
        "appeal_limit_reached",
        429,
        _("You have made as many appeals as a day allows; try again tomorrow."),
    )

    # --- residents and consent ---------------------------------------------------------------
    EMAIL_TAKEN = "email_taken", 409, _("An account with this email already exists.")
    UNKNOWN_COMMUNITY = "unknown_community", 400, _("No community has this code.")
    UNKNOWN_CONSENT_SCOPE = "unknown_consent_scope", 400, _("No such data source.")
    # 409, not 400: the request is well formed and succeeds unchanged once the resident has
    # consented; it conflicts with the resident's current consents, which the client can fix.
    CONSENT_REQUIRED = (
        "consent_required",
        409,
        _("Consent to this data source first, or send `consent`: true."),
    )
    # An erasure (or a deactivation) committed while the request was on its way: nothing of
    # it was recorded.
    ACCOUNT_CLOSED = (
        "account_closed",
        409,
        _("This account has been erased or deactivated; nothing was recorded."),
    )

    # --- partners (signed requests, feeds, residents' links) --------------------------------
    INVALID_SIGNATURE = (
        "invalid_signature",
        401,
        _("The partner signature is missing, malformed, stale or wrong."),
    )
    REPLAYED_REQUEST = "replayed_request", 409, _("This signed request was already received.")
    UNKNOWN_PARTNER = "unknown_partner", 400, _("No active partner has this id.")
    PARTNER_LINK_INVALID = "partner_link_invalid", 400, _("This partner account cannot be linked.")
    # Linking a card or a partner account with proof of control (carbon/services/linking.py).
    TOO_MANY_PENDING_LINKS = (
        "too_many_pending_links",
        409,
        _("Too many links are waiting for confirmation: confirm or cancel one first."),
    )
    LINK_LOCKED = "link_locked", 409, _("Too many wrong codes were entered for this account.")
    LINK_VOID = "link_void", 410, _("This link request is void; start a new one.")
    INVALID_LINK_CODE = "invalid_link_code", 400, _("This is not the code the partner showed.")
    NO_LINK_CODE = "no_link_code", 409, _("No code is waiting for this link.")
    UNKNOWN_LINK_TOKEN = "unknown_link_token", 404, _("No link request has this token.")
    LINK_REF_MISMATCH = (
        "link_ref_mismatch",
        409,
        _("This link request names another account than the one sent."),
    )
    NO_PENDING_LINK = "no_pending_link", 404, _("No resident is waiting to link this account.")
    BATCH_TOO_LARGE = "batch_too_large", 413, _("The batch holds more rows than one request may.")

    # --- transit -----------------------------------------------------------------------------
    NOT_TRANSIT_OPERATOR = "not_transit_operator", 403, _("Only transit operators may push taps.")
    INVALID_CARD_NUMBER = (
        "invalid_card_number",
        400,
        _("A card number is 8 to 20 digits (spaces and dashes are ignored)."),
    )
    INVALID_CARD_HASH = (
        "invalid_card_hash",
        400,
        _("A card hash is the 64-hex-digit HMAC of the card number, as in the taps."),
    )

    # --- photos --------------------------------------------------------------------------------
    PHOTO_TOO_LARGE = "photo_too_large", 413, _("The photo file is too large.")
    NOT_AN_IMAGE = "not_an_image", 400, _("The file is not an image in an accepted format.")
    IMAGE_TOO_LARGE = "image_too_large", 400, _("The image has too many pixels.")
    CAPTURE_TIME_IN_FUTURE = (
        "capture_time_in_future",
        400,
        _("The photo's capture time is in the future."),
    )
    PHOTO_WORK_BUSY = (
        "photo_work_busy",
        503,
        _("Too many photos are being processed right now; send it again in a few seconds."),
    )

    # --- rewards: offers, vouchers and their redemption by merchants ---------------------------
    OFFER_NOT_FOUND = "offer_not_found", 404, _("No offer has this id.")
    OFFER_INACTIVE = "offer_inactive", 409, _("This offer is not available now.")
    OUT_OF_STOCK = "out_of_stock", 409, _("This offer is out of stock.")
    LIMIT_REACHED = (
        "limit_reached",
        409,
        _("You have redeemed this offer as many times as its limit allows for now."),
    )
    VOUCHER_NOT_FOUND = "voucher_not_found", 404, _("No voucher of yours has this code or id.")
    VOUCHER_USED = "voucher_used", 409, _("This voucher was already used.")
    VOUCHER_CANCELLED = "voucher_cancelled", 409, _("This voucher was cancelled.")
    VOUCHER_EXPIRED = "voucher_expired", 409, _("This voucher has expired.")
    VOUCHER_NOT_REDEEMABLE = (
        "voucher_not_redeemable",
        409,
        _("This voucher cannot be redeemed at a till."),
    )
    QR_INVALID = "qr_invalid", 400, _("This QR code is forged, damaged or expired.")
    NOT_CANCELLABLE = "not_cancellable", 409, _("Only an unused voucher can be cancelled.")
    INVITATION_INVALID = (
        "invitation_invalid",
        400,
        _("This invitation is unknown, used or expired; ask your manager for a new one."),
    )
    INVALID_STOCK_CHANGE = (
        "invalid_stock_change",
        400,
        _("Stock can be changed by a whole number, and never below what is already issued."),
    )

    # --- transit top-ups (rewards/topups) -------------------------------------------------------
    TOPUP_CARD_NOT_LINKED = (
        "topup_card_not_linked",
        409,
        _("This card is not one of your linked transit cards: link it first."),
    )
    TOPUP_CARD_REQUIRED = (
        "topup_card_required",
        400,
        _("Say which of your linked transit cards to top up (card_number)."),
    )
    TOPUP_INVALID_AMOUNT = (
        "topup_invalid_amount",
        400,
        _("A top-up amount is a positive number of yuan with at most two decimals."),
    )
    TOPUP_OPERATOR_UNAVAILABLE = (
        "topup_operator_unavailable",
        503,
        _("Top-ups through this transit operator are not available right now."),
    )
    TOPUP_HOLD_UNUSABLE = (
        "topup_hold_unusable",
        409,
        _("The points held for this top-up cannot pay for it."),
    )
    TOPUP_NOT_REFUNDABLE = (
        "topup_not_refundable",
        409,
        _("This top-up is being sent or is already settled: it cannot be refunded now."),
    )

    # --- rewards: mortgage-interest offsets (rewards/offsets) ---------------------------------
    UNKNOWN_PROGRAMME = "unknown_programme", 400, _("No bank programme has this id.")
    PROGRAMME_CLOSED = (
        "programme_closed",
        409,
        _("This bank programme is not taking offset requests now."),
    )
    LOAN_REFERENCE_INVALID = (
        "loan_reference_invalid",
        400,
        _("The loan reference is 6 to 40 letters and digits."),
    )
    LOAN_LINK_REQUIRED = (
        "loan_link_required",
        409,
        _("Link a mortgage at this bank, and wait for the bank to confirm it, first."),
    )
    LOAN_LINK_EXISTS = (
        "loan_link_exists",
        409,
        _("You already have a loan linked at this programme; revoke it to link another."),
    )
    LOAN_LINK_RESOLVED = (
        "loan_link_resolved",
        409,
        _("This loan link was already decided otherwise."),
    )
    OFFSET_TOO_SMALL = (
        "offset_too_small",
        400,
        _("An offset must be worth at least the programme's minimum."),
    )
    OFFSET_MONTHLY_CAP = (
        "offset_monthly_cap",
        409,
        _("This offset would exceed your monthly cap for this programme."),
    )
    OFFSET_BUDGET_EXHAUSTED = (
        "offset_budget_exhausted",
        409,
        _("The programme's budget has not enough left for this offset."),
    )
    NOT_A_BANK = "not_a_bank", 403, _("Only the programme's bank may send this.")
    # --- money through Stripe (rewards/payments, sponsorships, pool, settlements) ---
    PAYMENTS_NOT_CONFIGURED = (
        "payments_not_configured",
        503,
        _("Card payments are not configured on this server."),
    )
    WEBHOOK_SIGNATURE_INVALID = (
        "webhook_signature_invalid",
        400,
        _("The webhook's signature or timestamp is not valid."),
    )
    PAYMENT_NOT_REFUNDABLE = (
        "payment_not_refundable",
        409,
        _("This payment cannot be refunded by that amount."),
    )
    SPONSORSHIP_INVALID_AMOUNT = (
        "sponsorship_invalid_amount",
        400,
        _("A sponsorship is a whole number of fen within the allowed range."),
    )
    POOL_INVALID_TONNES = (
        "pool_invalid_tonnes",
        400,
        _("Buy a whole number of tonnes, at least one."),
    )
    POOL_SHORT = (
        "pool_short",
        409,
        _("The pool has not enough reductions left for this purchase."),
    )
    SETTLEMENT_NO_ACCOUNT = (
        "settlement_no_account",
        409,
        _("This merchant has no connected Stripe account to be paid to."),
    )

    # --- biodiversity ----------------------------------------------------------------------
    UNKNOWN_TAXON = "unknown_taxon", 400, _("No taxon has this id.")
    OBSERVED_IN_FUTURE = (
        "observed_in_future",
        400,
        _("A sighting cannot be observed in the future; check the phone's clock."),
    )
    NOT_INSTITUTION_MEMBER = (
        "not_institution_member",
        403,
        _("Only members of a research institution may do this."),
    )
    INVALID_BBOX = (
        "invalid_bbox",
        400,
        _("bbox must be minlon,minlat,maxlon,maxlat in WGS-84 degrees, min below max."),
    )
    FLAG_ALREADY_OPEN = (
        "flag_already_open",
        409,
        _("You already flagged this sighting for this reason; moderators will look at it."),
    )

    # --- who may hold points (carbon/services/residents.py) ------------------------------------
    # Its own code rather than permission_denied: a client signed in with a merchant, an
    # institution or an administrator account is told to use a resident's account (or the
    # merchant API), not that it lacks some permission; the services raise it too.
    RESIDENTS_ONLY = (
        "residents_only",
        403,
        _(
            "Only residents' accounts may do this: merchant staff, institution members and "
            "administrators earn, hold and spend no points."
        ),
    )

    # --- leaderboards ------------------------------------------------------------------------
    UNKNOWN_BOARD = (
        "unknown_board",
        404,
        _("No leaderboard has this key; GET /leaderboards lists them."),
    )

    # --- zero waste: cells, objections, campaigns and votes (zerowaste) ----------------------
    CELL_NOT_FOUND = "cell_not_found", 404, _("No cell of this id is public or yours.")
    CELL_TRANSITION_NOT_ALLOWED = (
        "cell_transition_not_allowed",
        409,
        _("This cell cannot make that move from where it is in its lifecycle."),
    )
    CELL_NOT_IN_NOTICE = (
        "cell_not_in_notice",
        409,
        _("Objections are taken only while a cell is in its public notice period."),
    )
    OBJECTION_EXISTS = (
        "objection_exists",
        409,
        _("You have already objected to this cell."),
    )
    UNKNOWN_INDICATOR = "unknown_indicator", 400, _("This cell's kind has no such indicator.")
    CELL_NOT_UPDATABLE = (
        "cell_not_updatable",
        409,
        _("A revoked or rejected cell can no longer be updated."),
    )
    CAMPAIGN_NOT_FOUND = "campaign_not_found", 404, _("No campaign has this id.")
    NOT_A_CANDIDATE = "not_a_candidate", 400, _("This is not a candidate of the campaign.")
    VOTING_NOT_OPEN = "voting_not_open", 409, _("Voting in this campaign is not open now.")
    VOTER_NOT_VERIFIED = (
        "voter_not_verified",
        403,
        _(
            "Only verified residents may vote: link and confirm a transit card or a partner "
            "account, and have an account old enough for this campaign."
        ),
    )
    DAILY_VOTES_USED = (
        "daily_votes_used",
        409,
        _("You have cast all of today's votes in this campaign; come back tomorrow."),
    )
    ALREADY_VOTED_FOR_CANDIDATE = (
        "already_voted_for_candidate",
        409,
        _("You have already voted for this candidate today."),
    )
    CAMPAIGN_NOT_CLOSED = (
        "campaign_not_closed",
        409,
        _("Results are published only after voting closes, with every jury score entered."),
    )


class DomainError(Exception):
    """A refusal a client can act on. Its `code` is a catalogue member; its HTTP `status`
    (and, unless the class or the raiser words it better, its message) come from that member.

    Subclass it and set `code` (the usual way), or raise it with `code=` for a one-off. A
    subclass may not set `status`: the catalogue is the only place a status is decided.
    """

    #: Set by each subclass (DomainError itself has none, so it is raised with `code=`).
    code: ErrorCode
    #: Optional wording for this class, where the catalogue's is too general (a lazy
    #: translation, `gettext_lazy`, like the catalogue's).
    default_message: ClassVar[str | Promise | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "status" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} sets a status; it comes from its ErrorCode in "
                "carbon.errors, add or change the catalogue entry instead."
            )
        code = getattr(cls, "code", None)
        if not isinstance(code, ErrorCode):
            raise TypeError(f"{cls.__qualname__}.code must be an ErrorCode, not {code!r}.")

    def __init__(
        self,
        message: str | Promise | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: ErrorCode | None = None,
    ):
        code = code if code is not None else getattr(type(self), "code", None)
        if not isinstance(code, ErrorCode):
            raise TypeError("A DomainError needs an ErrorCode: subclass it or pass `code=`.")
        self.code = code
        self.message = message or self.default_message or code.default_message
        self.details = details or {}
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return self.code.status


class IdempotencyConflict(DomainError):
    code = ErrorCode.IDEMPOTENCY_CONFLICT


class InsufficientFunds(DomainError):
    code = ErrorCode.INSUFFICIENT_BALANCE


class PendingAlreadyResolved(DomainError):
    code = ErrorCode.PENDING_ALREADY_RESOLVED


class HoldExpired(DomainError):
    code = ErrorCode.HOLD_EXPIRED


class NotPending(DomainError):
    code = ErrorCode.NOT_PENDING


class InvalidAmount(DomainError):
    code = ErrorCode.INVALID_AMOUNT


class NothingToReverse(DomainError):
    code = ErrorCode.NOTHING_TO_REVERSE


class UnknownBehaviour(DomainError):
    code = ErrorCode.UNKNOWN_BEHAVIOUR


class InvalidQuantity(DomainError):
    code = ErrorCode.INVALID_QUANTITY


class OutsideClaimWindow(DomainError):
    code = ErrorCode.OUTSIDE_CLAIM_WINDOW


class EvidenceNotAccepted(DomainError):
    code = ErrorCode.EVIDENCE_NOT_ACCEPTED


class InvalidSignature(DomainError):
    code = ErrorCode.INVALID_SIGNATURE


class ReplayedRequest(DomainError):
    code = ErrorCode.REPLAYED_REQUEST


class InvalidReview(DomainError):
    code = ErrorCode.INVALID_REVIEW


class RowError(Exception):
    """One bad row of a partner batch (taps, events): reported in the per-row answer with a
    stable code, never raised out of the batch."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(message)
