"""Transit-card top-ups: points turned into money on a resident's transit card, fulfilled by
the transit operator from an outbox row (see services.py)."""
