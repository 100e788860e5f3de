"""Uplinks: one small interface, one module each."""
