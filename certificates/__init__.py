"""nncert.certificates."""
