"""Experiments: definitions with salted-hash assignment, exposures logged as events, and their
analysis (z/Welch/chi-square tests, CUPED, Holm, sample-ratio check, power)."""
