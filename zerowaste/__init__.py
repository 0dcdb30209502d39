"""Zero-waste cells and award voting: not built yet (a later issue)."""
