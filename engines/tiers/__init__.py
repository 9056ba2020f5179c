"""The in-house tiers: graphs per call (Tier 0), the tape and its interpreters (Tiers 1 and 2)."""
