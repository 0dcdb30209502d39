"""The offsets slice's refusals; their codes, statuses and default messages are in the
catalogue (carbon.errors, section "offsets")."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from carbon.errors import DomainError, ErrorCode


class UnknownProgramme(DomainError):
    code = ErrorCode.UNKNOWN_PROGRAMME


class ProgrammeClosed(DomainError):
    code = ErrorCode.PROGRAMME_CLOSED


class LoanReferenceInvalid(DomainError):
    code = ErrorCode.LOAN_REFERENCE_INVALID


class LoanConsentRequired(DomainError):
    code = ErrorCode.CONSENT_REQUIRED
    default_message = _(
        "Send `consent`: true to agree that the bank receives your offsets and credits them "
        "to this loan."
    )


class LoanLinkExists(DomainError):
    code = ErrorCode.LOAN_LINK_EXISTS


class LoanLinkRequired(DomainError):
    code = ErrorCode.LOAN_LINK_REQUIRED


class LoanLinkResolved(DomainError):
    code = ErrorCode.LOAN_LINK_RESOLVED


class LoanLinkNotFound(DomainError):
    code = ErrorCode.NOT_FOUND
    default_message = _("No such loan link of yours.")


class UnknownLoanLinkToken(DomainError):
    code = ErrorCode.UNKNOWN_LINK_TOKEN
    default_message = _("No loan link request at this bank has this token.")


class LoanReferenceMismatch(DomainError):
    code = ErrorCode.LINK_REF_MISMATCH
    default_message = _("This link request names another loan than the one you sent.")


class OffsetTooSmall(DomainError):
    code = ErrorCode.OFFSET_TOO_SMALL


class OffsetMonthlyCap(DomainError):
    code = ErrorCode.OFFSET_MONTHLY_CAP


class OffsetBudgetExhausted(DomainError):
    code = ErrorCode.OFFSET_BUDGET_EXHAUSTED


class OffsetNotVoidable(DomainError):
    code = ErrorCode.PENDING_ALREADY_RESOLVED
    default_message = _("Only an offset the bank has not answered yet can be voided.")


class NotABank(DomainError):
    code = ErrorCode.NOT_A_BANK
