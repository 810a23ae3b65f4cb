"""common.training."""
