"""Identity matchers and in-toto statements."""

from __future__ import annotations

import pytest

from trustgate.errors import ConfigError
from trustgate.verify import IdentityMatcher, Statement

GITHUB = "https://token.actions.githubusercontent.com"
TAG = "https://github.com/acme/x/.github/workflows/ci.yml@refs/tags/v1.2.3"
DEV = "https://github.com/acme/x/.github/workflows/ci.yml@refs/heads/dev"


def test_exact_match() -> None:
    matcher = IdentityMatcher(subject=TAG, issuer=GITHUB)
    assert matcher.matches(TAG, GITHUB)
    assert not matcher.matches(DEV, GITHUB)
    assert not matcher.matches(TAG, "https://accounts.google.com")
    assert not matcher.matches(TAG + "x", GITHUB)


def test_regex_must_match_the_whole_identity() -> None:
    matcher = IdentityMatcher(subject_regex=r"https://github\.com/acme/x/.*@refs/tags/v.*", issuer=GITHUB)
    assert matcher.matches(TAG, GITHUB)
    assert not matcher.matches(DEV, GITHUB)
    assert not matcher.matches("evil" + TAG, GITHUB)
    partial = IdentityMatcher(subject_regex=r"https://github\.com/acme", issuer=GITHUB)
    assert not partial.matches(TAG, GITHUB)


def test_issuer_regex() -> None:
    matcher = IdentityMatcher(
        subject=TAG, issuer_regex=r"https://token\.actions\.githubusercontent\.com|https://gitlab\.com"
    )
    assert matcher.matches(TAG, GITHUB) and matcher.matches(TAG, "https://gitlab.com")
    assert not matcher.matches(TAG, "https://gitlab.com.evil")


def test_describe() -> None:
    assert IdentityMatcher(subject=TAG, issuer=GITHUB).describe() == f"{TAG} (issuer {GITHUB})"
    assert IdentityMatcher(subject_regex="a.*", issuer_regex="b.*").describe() == (
        "an identity matching a.* (issuer an issuer matching b.*)"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issuer": GITHUB},
        {"subject": TAG},
        {"subject": TAG, "subject_regex": ".*", "issuer": GITHUB},
        {"subject": TAG, "issuer": GITHUB, "issuer_regex": ".*"},
        {"subject_regex": "(", "issuer": GITHUB},
    ],
)
def test_incomplete_or_invalid_matchers_are_config_errors(kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        IdentityMatcher(**kwargs)


def test_statement_covers_case_insensitively() -> None:
    stmt = Statement(
        statement_type="https://in-toto.io/Statement/v1",
        predicate_type="https://slsa.dev/provenance/v1",
        subjects=(("img", {"sha256": "AB" * 32}), ("other", {"sha512": "cd"})),
        predicate={},
        envelope_sha256="sha256:" + "0" * 64,
    )
    assert stmt.covers("sha256:" + "ab" * 32)
    assert not stmt.covers("sha256:" + "cd" * 32)
    assert not stmt.covers("ab" * 32)
    assert stmt.to_json()["subject"][0] == {"name": "img", "digest": {"sha256": "AB" * 32}}
