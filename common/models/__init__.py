"""common.models."""
