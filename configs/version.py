"""The service's version: the one place it is written. ``pyproject.toml`` reads it (setuptools'
``dynamic`` version), the API states it in OpenAPI's ``info.version``, and the CLI's ``--version``
should print it, so a client, the package and the docs never disagree (tests/configs/test_version.py)."""

VERSION = "0.2.0"
