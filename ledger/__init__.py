"""The ledger: registry, intake log, items, outbound queue, rulebook and calendar (SPEC §5)."""
