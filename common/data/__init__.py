"""common.data."""
