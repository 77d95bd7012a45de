"""Shared helpers of the ctys.pm test suite."""
