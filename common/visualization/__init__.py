"""common.visualization."""
