"""Models that only the tests need: integer and string primary keys, PROTECT, checks."""
