"""The staff console's page families, one module each."""
