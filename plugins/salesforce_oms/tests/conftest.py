"""Shared test configuration of the omsbridge-salesforce distribution."""

pytest_plugins = ["omsbridge_salesforce_sandbox.pytest_plugin"]
