"""Cost tracking: price book, metering from usage records, reports, budgets that act."""
