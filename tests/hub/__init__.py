"""Tests of ``common.hub``, one file per module of the package."""
