"""Pure-Python twin of the COPY BINARY codec (placeholder until the twin lands)."""
