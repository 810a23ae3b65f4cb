"""common.utils."""
