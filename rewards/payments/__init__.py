"""Money through Stripe: the one gateway, the outbox of calls, payments and refunds, verified
webhooks and the reconciliation of our records with Stripe's objects."""
