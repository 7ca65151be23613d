"""The story of one run: trace and interactive play."""
