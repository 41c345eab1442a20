"""The writes of the clusters app."""
