"""pmlab: the simulated machine room of ctys.pm (see tests/lab/README.md)."""
