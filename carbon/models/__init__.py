"""The carbon core's models, one module per part of the domain."""

from .catalogue import Behaviour, Category, EmissionFactor, EvidenceTier
from .claims import Claim, ClaimStatus
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
