"""The carbon core's models, one module per part of the domain."""

# The adapters' models live in their slices (carbon/adapters/*/models.py) and keep the
# `carbon` app label; importing them here registers them with Django. Import them from their
# slice, not from here: the core's own code never uses them.
from carbon.adapters.partner_events import models as _partner_events_models  # noqa: E402, F401, I001
from carbon.adapters.photo import models as _photo_models  # noqa: E402, F401
from carbon.adapters.transit import models as _transit_models  # noqa: E402, F401
from carbon.leaderboards import models as _leaderboard_models  # noqa: E402, F401

from .catalogue import Behaviour, Category, EmissionFactor, EvidenceTier
from .claims import Appeal, AppealStatus, Claim, ClaimStatus, PenaltyBox
from .ledger import (
    Account,
    AccountKind,
    Lot,
    LotAllocation,
    Transfer,
    TransferCode,
    TransferFlag,
)
from .partners import Partner, PartnerCredential, PartnerRequestNonce
from .people import Community, Consent, ConsentScope, District, User

__all__ = [
    "Appeal",
    "AppealStatus",
    "PenaltyBox",
    "Account",
    "AccountKind",
    "Behaviour",
    "Category",
    "Claim",
    "ClaimStatus",
    "Community",
    "Consent",
    "ConsentScope",
    "District",
    "EmissionFactor",
    "EvidenceTier",
    "Lot",
    "LotAllocation",
    "Partner",
    "PartnerCredential",
    "PartnerRequestNonce",
    "Transfer",
    "TransferCode",
    "TransferFlag",
    "User",
]
