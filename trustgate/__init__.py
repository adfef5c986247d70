"""trustgate: one policy, enforced before merge, before sync and at admission."""

from trustgate import _precompiled

__version__ = "0.1.0"

_precompiled.install()  # before any module of ours makes a dataclass
