"""nncert.formulations."""
