"""Mortgage-interest offsets: a partner bank's programme, residents' loan links, offsets
that hold green-travel grams, the daily signed batch sent to the bank and its signed
confirmations, which move the grams to the bank's enterprise account."""
