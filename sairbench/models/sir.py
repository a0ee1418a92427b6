"""Semantic branch: SIR over a frozen semantic encoder (filled in by the semantics work)."""
