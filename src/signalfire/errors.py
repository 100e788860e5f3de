"""Errors a person can act on: each message says what is wrong and what to do next."""

from __future__ import annotations


class SignalfireError(Exception):
    """A problem with files, settings or usage (not with packet bytes; see wire.errors)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
