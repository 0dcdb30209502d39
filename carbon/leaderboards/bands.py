"""Score bands of the database backend's rank aid: a monotonic map from a score to a small
integer, exact below 128 and then 64 bands per doubling (each about 1/64 to 1/128 of its
scores wide), in integer arithmetic so Python and SQL never disagree on a boundary.

A score of 0 has no band (a member at 0 is not on the board); a negative score mirrors its
positive one, so the order holds across zero.
"""

from __future__ import annotations

MANTISSA_BITS = 6
_EXACT = 1 << (MANTISSA_BITS + 1)  # 128: below it each score is its own band


def score_band(score: int) -> int:
    if score < 0:
        return -score_band(-score)
    if score < _EXACT:
        return score
    shift = score.bit_length() - (MANTISSA_BITS + 1)
    return (shift << MANTISSA_BITS) + (score >> shift)


def band_bounds(band: int) -> tuple[int, int]:
    """The lowest and highest score of a band."""
    if band < 0:
        low, high = band_bounds(-band)
        return -high, -low
    if band < _EXACT:
        return band, band
    shift = (band >> MANTISSA_BITS) - 1
    mantissa = band - (shift << MANTISSA_BITS)
    return mantissa << shift, ((mantissa + 1) << shift) - 1
