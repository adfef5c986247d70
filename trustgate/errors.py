"""The exceptions trustgate raises, grouped by who has to act.

Every error has `diagnostics()`: one or a few lines that name the file and the
place and say what to do. Entry points (the CLI, later the webhook) turn these
into an exit code or a response in exactly one place; nothing below them
prints or exits.
"""

from __future__ import annotations


class Error(Exception):
    """Base of every trustgate error."""

    def __init__(self, message: str, *, where: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def diagnostics(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


class InputError(Error):
    """A manifest or path the user gave cannot be read (the user must act)."""


class ConfigError(Error):
    """`trustgate.yaml` (or a flag) is invalid (the user must act)."""


class PolicyError(Error):
    """A policy does not parse or evaluate (the policy author must act)."""


class VerificationError(Error):
    """Signature material exists and does not verify: a deny (the publisher or signer must act)."""


class RenderError(InputError):
    """A kustomization could not be rendered."""


class ToolMissingError(Error):
    """An external program trustgate needs is not installed (operations must act)."""


class DecisionLogError(Error):
    """The decision log cannot be opened, read or written (operations must act)."""


class DecisionLogMissingError(DecisionLogError):
    """The decision log named is not there (no SQLite file, an empty one, or a database without the
    log's tables), and the caller must not start a new one: a wrong URL (the user must act)."""


class CheckpointRolledBackError(DecisionLogError):
    """The decision log's newest stored checkpoint is older than one its writer signed: someone with
    write access deleted the newer ones (`GET /checkpoint` serves none then)."""


class InconsistentLogError(DecisionLogError):
    """The log contradicts itself where a reader looked: an id column that is not its record's, or
    two records with one id. Someone with write access altered it; `log verify` names what."""
