"""Reports for leaders: monthly 通报, quarterly and annual summaries (SPEC §6)."""
