"""The carbon core's models, one module per part of the domain."""

from .catalogue import Behaviour, Category, EmissionFactor, EvidenceTier
from .claims import Appeal, AppealStatus, Claim, ClaimStatus, PenaltyBox
from .events import PartnerEvent, PartnerEventStatus, PartnerLink
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
from .photos import ClaimPhoto, PhotoHashBand
from .transit import (
    LineStop,
    Station,
    Tap,
    TapDirection,
    TransitCard,
    TransitLine,
    TransitMode,
    Trip,
    TripStatus,
)

__all__ = [
    "Appeal",
    "AppealStatus",
    "ClaimPhoto",
    "LineStop",
    "PartnerEvent",
    "PartnerEventStatus",
    "PartnerLink",
    "PenaltyBox",
    "PhotoHashBand",
    "Station",
    "Tap",
    "TapDirection",
    "TransitCard",
    "TransitLine",
    "TransitMode",
    "Trip",
    "TripStatus",
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
