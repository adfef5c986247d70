"""Who asked for a decision, as a CI gate can tell: the CI run and the git commit.

Owns: reading the well-known variables of CI systems (GitHub Actions, GitLab
CI, Jenkins, CircleCI, Azure Pipelines, Buildkite) from an environment
mapping the caller passes in, and asking `git` about the commit the inputs
come from (author, committer, signature as git reports it, branch, remote
without credentials). Leaves out: admission `userInfo` (the webhook passes
it) and verifying commit signatures (the pre-sync gate does).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustgate.decisions.record import Actor, DecisionContext, GitIdentity

GIT_TIMEOUT_SECONDS = 5.0  # seconds; git answers in milliseconds unless something is badly wrong

# provider -> (detect variable, {field: variable})
_CI: dict[str, tuple[str, dict[str, str]]] = {
    "github": (
        "GITHUB_ACTIONS",
        {
            "repository": "GITHUB_REPOSITORY",
            "runId": "GITHUB_RUN_ID",
            "runAttempt": "GITHUB_RUN_ATTEMPT",
            "workflow": "GITHUB_WORKFLOW",
            "event": "GITHUB_EVENT_NAME",
            "ref": "GITHUB_REF",
            "sha": "GITHUB_SHA",
            "actor": "GITHUB_ACTOR",
        },
    ),
    "gitlab": (
        "GITLAB_CI",
        {
            "repository": "CI_PROJECT_PATH",
            "runId": "CI_PIPELINE_ID",
            "jobId": "CI_JOB_ID",
            "runUrl": "CI_JOB_URL",
            "event": "CI_PIPELINE_SOURCE",
            "ref": "CI_COMMIT_REF_NAME",
            "sha": "CI_COMMIT_SHA",
            "actor": "GITLAB_USER_LOGIN",
        },
    ),
    "jenkins": (
        "JENKINS_URL",
        {
            "repository": "GIT_URL",
            "runId": "BUILD_NUMBER",
            "workflow": "JOB_NAME",
            "runUrl": "BUILD_URL",
            "ref": "GIT_BRANCH",
            "sha": "GIT_COMMIT",
        },
    ),
    "circleci": (
        "CIRCLECI",
        {
            "repository": "CIRCLE_REPOSITORY_URL",
            "runId": "CIRCLE_BUILD_NUM",
            "workflow": "CIRCLE_WORKFLOW_ID",
            "runUrl": "CIRCLE_BUILD_URL",
            "ref": "CIRCLE_BRANCH",
            "sha": "CIRCLE_SHA1",
            "actor": "CIRCLE_USERNAME",
        },
    ),
    "azure": (
        "TF_BUILD",
        {
            "repository": "BUILD_REPOSITORY_NAME",
            "runId": "BUILD_BUILDID",
            "workflow": "BUILD_DEFINITIONNAME",
            "ref": "BUILD_SOURCEBRANCH",
            "sha": "BUILD_SOURCEVERSION",
            "actor": "BUILD_REQUESTEDFOR",
        },
    ),
    "buildkite": (
        "BUILDKITE",
        {
            "repository": "BUILDKITE_REPO",
            "runId": "BUILDKITE_BUILD_ID",
            "workflow": "BUILDKITE_PIPELINE_SLUG",
            "runUrl": "BUILDKITE_BUILD_URL",
            "ref": "BUILDKITE_BRANCH",
            "sha": "BUILDKITE_COMMIT",
            "actor": "BUILDKITE_BUILD_CREATOR",
        },
    ),
}
_CREDENTIALS = re.compile(r"(?<=://)[^/@]*@")


def ci_environment(env: Mapping[str, str]) -> dict[str, str] | None:
    """The CI run described by `env`, or None outside a known CI system."""
    for provider, (detect, fields) in _CI.items():
        if not env.get(detect):
            continue
        out = {"provider": provider}
        for key, var in fields.items():
            value = env.get(var)
            if value:
                out[key] = strip_credentials(value)
        if provider == "github" and "repository" in out and "runId" in out:
            server = env.get("GITHUB_SERVER_URL", "https://github.com")
            out["runUrl"] = f"{server}/{out['repository']}/actions/runs/{out['runId']}"
        return out
    if env.get("CI"):
        return {"provider": "unknown"}
    return None


def strip_credentials(url: str) -> str:
    """`https://token@host/x` -> `https://host/x`: a record must not keep a secret from a URL."""
    return _CREDENTIALS.sub("", url)


@dataclass(frozen=True, slots=True)
class GitCommit:
    commit: str
    ref: str | None
    remote: str | None
    author: GitIdentity
    committer: GitIdentity
    signer: dict[str, str] | None


def git_commit(directory: Path) -> GitCommit | None:
    """What git says about HEAD of the repository holding `directory`; None outside one or without git."""
    fmt = "%H%x00%an%x00%ae%x00%cn%x00%ce%x00%G?%x00%GS%x00%GK"
    out = _git(directory, "log", "-1", f"--format={fmt}")
    if out is None:
        return None
    parts = out.rstrip("\n").split("\x00")
    if len(parts) != 8:
        return None
    sha, an, ae, cn, ce, status, signer, key = parts
    ref = _git(directory, "symbolic-ref", "-q", "HEAD")
    remote = _git(directory, "config", "--get", "remote.origin.url")
    signature = None
    if status and status != "N":  # N: not signed; G good, B bad, U unknown validity, E cannot check, ...
        signature = {"status": status, "identity": signer, "key": key}
    return GitCommit(
        commit=sha,
        ref=ref.strip() if ref else None,
        remote=strip_credentials(remote.strip()) if remote else None,
        author=GitIdentity(an, ae),
        committer=GitIdentity(cn, ce),
        signer=signature,
    )


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def ci_context(env: Mapping[str, str], directory: Path) -> DecisionContext:
    """The context of a CI check: the CI run from `env`, the commit from git (CI variables win)."""
    ci = ci_environment(env)
    git = git_commit(directory)
    actor = Actor(
        author=git.author if git else None,
        committer=git.committer if git else None,
        signer=git.signer if git else None,
        ci=ci,
    )
    ci = ci or {}
    return DecisionContext(
        actor=actor,
        repository=ci.get("repository") or (git.remote if git else None),
        commit=ci.get("sha") or (git.commit if git else None),
        ref=ci.get("ref") or (git.ref if git else None),
    )
