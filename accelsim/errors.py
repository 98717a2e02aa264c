"""User-facing errors. The CLI prints their message on one line and exits with status 2."""
from __future__ import annotations


class AccelsimError(Exception):
    """Bad input from the user: a file, a field or a name. Never a bug in accelsim."""

    exit_status = 2


class ConfigError(AccelsimError):
    """A hardware config, recipe or sweep document is malformed.

    The message names the file, the field path, what was expected and what was found.
    """

    def __init__(self, file: str | None, field: str | None, message: str):
        self.file = file
        self.field = field
        self.detail = message
        where = ": ".join(part for part in (file, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class GraphError(AccelsimError):
    """A workload graph is malformed (unknown op, bad shape, missing input, ...)."""


class MissingExtraError(AccelsimError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str):
        self.package, self.extra = package, extra
        super().__init__(
            f"{purpose} needs the '{package}' package of the '{extra}' extra: install it with "
            f"pip install 'accelsim[{extra}]' (from a checkout: pip install -e '.[{extra}]'; or: pip install {package})"
        )
