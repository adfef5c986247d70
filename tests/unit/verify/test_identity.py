"""Identity matchers and in-toto statements."""

from __future__ import annotations

import re
from pathlib import Path

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
    matcher = IdentityMatcher(
        subject_regex=r"https://github\.com/acme/x/[^@]*@refs/tags/v[^@]*", issuer=GITHUB
    )
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


REPO = Path(__file__).resolve().parents[3]
RELEASE = "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.4.2"
# Identities of builds of branches that a regex letting `.` cross an `@` takes for a tag's.
BRANCH_BUILDS = (
    "https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/x@refs/tags/v1",
    "https://github.com/acme/shop/.github/workflows/release.yml@refs/tags/v1.yml@refs/heads/evil",
)
_DOC_REGEX = re.compile(r"(?:subjectRegExp: |--certificate-identity-regexp )'([^']*@refs/tags/[^']*)'")


def _documented_regexes() -> list[tuple[str, str]]:
    files = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [
        (str(f.relative_to(REPO)), m[1]) for f in files for m in _DOC_REGEX.finditer(f.read_text("utf-8"))
    ]


def test_documented_identity_regexes_take_a_tag_build_and_refuse_branch_builds() -> None:
    found = _documented_regexes()
    assert len(found) >= 2, found
    for where, pattern in found:
        matcher = IdentityMatcher(subject_regex=pattern, issuer=GITHUB)
        assert matcher.matches(RELEASE, GITHUB), (where, pattern)
        for identity in BRANCH_BUILDS:
            assert not matcher.matches(identity, GITHUB), (where, pattern, identity)


def test_no_example_or_test_identity_regex_lets_a_wildcard_cross_the_ref() -> None:
    """`.+@refs/` or `@refs/tags/v.*` in an example is the regex above (`[^@]` forms instead).
    Every line of tests/ and fixtures/; the lines of the docs that configure a regex (their prose
    quotes the wrong form)."""
    wildcard = re.compile(r"\.[*+]@refs/|@refs/(?:tags|heads)/[\w.\\-]*\.[*+]")
    docs = [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    files = [*(REPO / "fixtures").rglob("*")]
    files += [f for f in (REPO / "tests").rglob("*") if f.suffix in (".py", ".yaml", ".yml", ".md", ".json")]
    offenders = [
        f"{f.relative_to(REPO)}:{n}"
        for f in [*docs, *files]
        if f.is_file() and f != Path(__file__)
        for n, line in enumerate(f.read_text("utf-8", errors="replace").splitlines(), 1)
        if wildcard.search(line) and (f not in docs or "regexp" in line.lower())
    ]
    assert not offenders, offenders
