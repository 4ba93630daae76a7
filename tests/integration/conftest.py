"""Fixtures shared by the integration tests of several services."""

from tests.integration.private_kafka import private_cluster, private_kafka  # noqa: F401
