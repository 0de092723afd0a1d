"""Analysis passes: pure functions of (module, input shape[, settings]) -> records."""
