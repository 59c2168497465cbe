"""Global consistency: checkpoint coordination, storage, restart strategies, savepoints."""
