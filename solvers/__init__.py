"""nncert.solvers."""
