"""Refusals of the campaigns slice (their codes are in carbon.errors.ErrorCode)."""

from carbon.errors import DomainError, ErrorCode


class CampaignNotFound(DomainError):
    code = ErrorCode.CAMPAIGN_NOT_FOUND


class NotACandidate(DomainError):
    code = ErrorCode.NOT_A_CANDIDATE


class VotingNotOpen(DomainError):
    code = ErrorCode.VOTING_NOT_OPEN


class VoterNotVerified(DomainError):
    code = ErrorCode.VOTER_NOT_VERIFIED


class DailyVotesUsed(DomainError):
    code = ErrorCode.DAILY_VOTES_USED


class AlreadyVotedForCandidate(DomainError):
    code = ErrorCode.ALREADY_VOTED_FOR_CANDIDATE


class CampaignNotClosed(DomainError):
    code = ErrorCode.CAMPAIGN_NOT_CLOSED
