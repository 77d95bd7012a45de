"""Root conftest: loads the lab fixtures for every test directory."""

pytest_plugins = ["pmlab_lib.pytest_plugin"]
