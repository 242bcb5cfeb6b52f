# cython: language_level=3
"""Cython core of the COPY BINARY codec (placeholder until the core lands)."""
