"""trustgate: one policy, enforced before merge, before sync and at admission."""

__version__ = "0.1.0"
