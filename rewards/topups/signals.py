"""What the top-up slice tells others, so that they need not be imported here: sent once per
top-up, after the transaction that settled it committed."""

from django.dispatch import Signal

#: sender=TopUp, topup=<TopUp>, outcome="confirmed" | "refused" | "failed". Receivers run
#: after the commit, outside it: each must be idempotent and keep its own transaction.
topup_settled = Signal()
