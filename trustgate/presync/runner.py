"""The pre-sync gate: judge the candidate tip of a branch, and move the gated ref only when it passes.

Owns: one run (`PresyncGate.run`): open the repository, find the range
between the gated ref and the candidate, check the fast-forward, the commits
(signatures, authors, committers), render the candidate tree and evaluate it
with the same `Gate` as `trustgate check` (images included; and what each
Flux Kustomization and Argo CD Application of the tree builds, as it builds
it: `_flux_build`), diff it against
the gated tree for removed protected objects (per reconciler: what Flux and
Argo CD each apply, `reconcilers`), hand the gated tree's objects
to the evaluation (an object there is judged as an UPDATE of it, as the API
server will judge the apply: `oldObject`, CRD transition rules), recognise a rollback (a
non-fast-forward back to what the reconcilers apply of `presync.paths` (the
files, and the `.sourceignore` files and checkout attributes deciding how they
read them) that this gate, for the same repository, gated ref, paths and
protected kinds, moved its ref to in enforce mode), and then advance (and
push) the gated ref, write a git note, and leave one record in the decision
log (with `subject.presync`: the scope, the digest of what the reconcilers
apply (`_paths_tree`), and where the gated ref was).
Caches across runs of one process (`--watch`): the remote clone, the keyring,
the inventories of trees already rendered (the objects of the last few), and
the gate's image cache. Leaves out:
flags and printing (the CLI).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from trustgate.config import Config
from trustgate.errors import ConfigError, Error
from trustgate.gate import Gate
from trustgate.gate.recorder import Actor, DecisionContext, GitIdentity, content_hash
from trustgate.gate.verdict import severity
from trustgate.manifests import loader, variables
from trustgate.model import (
    KUSTOMIZATION_FILES,
    Decision,
    Document,
    DocumentResult,
    ExitCode,
    Finding,
    InputProblem,
    Severity,
    Source,
)
from trustgate.presync import changes, reconcilers
from trustgate.presync.git import (
    Commit,
    Git,
    GitError,
    TreeEntry,
    checkout_conversions,
    fetch,
    full_ref,
    is_url,
    open_local,
    open_remote,
    push,
    push_notes,
    quoted,
    ref_format_problem,
    repo_path,
    within,
)
from trustgate.presync.signatures import Keyring, commit_findings, signer_record

GATE = "presync"
_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a SHA-1 or SHA-256 object id, in full
_PAST_SHOWN = 5  # commits pushed past the gate that a stop names one by one
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class GatedRefMissingError(Error):
    """The gated ref is gone, but this gate decided on it before: it was deleted (or lost).

    A first run would check only the tip's signature and no deletions, so it is not one
    unless the operator says so (`--initialize`).
    """

    rule = "presync/gated-ref-missing"


class GatedRefMovedError(Error):
    """The gated ref points at a commit this gate did not leave it at: someone else moved it.

    Judging onward from it would take the commits pushed past the gate for judged (and the
    reconciler deploys them): the run stops, unless the operator accepts that commit
    (`--accept-gated-commit`). `presync` is what the run's record keeps of it.
    """

    rule = "presync/gated-ref-moved"

    def __init__(self, message: str, *, where: str, hint: str, presync: Mapping[str, object]) -> None:
        super().__init__(message, where=where, hint=hint)
        self.presync = presync


class RenderBudgetError(Error):
    """The renders of kustomizations no other includes took all of `limits.kustomizeBudgetSeconds`."""

    rule = "presync/render-budget"


class Action:
    ADVANCED = "advanced"  # the gated ref moved forward to the candidate
    CREATED = "created"  # the gated ref did not exist; the first passing tip created it
    ROLLED_BACK = "rolled-back"  # moved back to files the gated ref held before (allowRollback)
    ALREADY = "already"  # the gated ref already points at the candidate: nothing to decide
    UNCHANGED = "unchanged"  # --watch: this candidate was decided before and nothing moved
    REFUSED = "refused"  # the candidate failed; the gated ref stays
    ERROR = "error"  # could not evaluate; the gated ref stays


@dataclass(slots=True)
class Outcome:
    """What one run did."""

    action: str
    exit_code: int
    repository: str
    ref: str
    gated_ref: str
    candidate: str | None = None
    gated: str | None = None  # where the gated ref pointed before the run
    decision: Decision | None = None
    message: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "exitCode": self.exit_code,
            "repository": self.repository,
            "ref": self.ref,
            "gatedRef": self.gated_ref,
            "candidate": self.candidate,
            "gatedBefore": self.gated,
            "message": self.message,
            "warnings": list(self.warnings),
            "decision": self.decision.record_id if self.decision else None,
            "durationMs": round(self.duration_ms, 1),
        }


class PresyncGate:
    """Runs the pre-sync gate over one configuration; reuse it across runs (`--watch`).

    Args:
        gate: the evaluation gate (built from `config`, with its decision log).
        config: the configuration (`commits`, `presync`).
        cache_dir: where remote repositories are cloned; default: a temp dir removed by `close`.
        committer: the identity git notes are written as.
        invoker: who runs the gate, as the CI system says (`actor.ci_environment`; its
            `actor` is who pushed or triggered the run); recorded as `actor.ci` and indexed
            for `--actor`. git does not record who pushed a ref, so without it a rollback
            (a reset and force-push, which adds no commit) names no pusher.

    Raises:
        ConfigError: a signer file of `commits` is unusable, or `presync.paths` is empty.
    """

    def __init__(
        self,
        *,
        gate: Gate,
        config: Config,
        cache_dir: Path | None = None,
        committer: tuple[str, str] = ("trustgate", "trustgate@localhost"),
        invoker: Mapping[str, str] | None = None,
    ) -> None:
        if not config.presync.paths:  # no path judges nothing: every commit would pass
            raise ConfigError(
                "presync.paths is empty: the pre-sync gate would judge no file and let every commit through",
                where=config.origin,
                hint="list what the reconciler applies (`paths: [clusters/prod]`), "
                "or `[.]` for the whole tree",
            )
        self.gate = gate
        self.config = config
        self.settings = config.presync
        self.keyring = Keyring(config.commits)
        self._owned_cache = cache_dir is None
        self.cache_dir = cache_dir or Path(tempfile.mkdtemp(prefix="trustgate-presync-"))
        self._committer = committer
        self._invoker = dict(invoker) if invoker else None
        self._trees: dict[str, tuple[dict[changes.ObjectKey, changes.Seen], list[InputProblem]]] = {}
        self._objects: dict[str, list[Mapping[str, object]]] = {}  # of the last trees rendered (bounded)
        self._decided: dict[tuple[str, str, str], tuple[str, str | None, str]] = {}
        # Where this process left each (repository, gated ref), or found it vetted (`_vet_gated`): what
        # it knows without a decision log, and beside one whose record failed (failure policy open);
        # with the id of the newest record of the ref it knew then (None: none), past which it is stale.
        self._left: dict[tuple[str, str], tuple[set[str], str | None]] = {}
        self._remotes: dict[str, Git] = {}
        self._listed: tuple[tuple[str, str], list[TreeEntry]] | None = None  # the last `ls_tree`
        # The last `_checkout_attributes`: of the files `_ls_tree` lists, at one commit.
        self._attributes: tuple[tuple[str, str], dict[str, dict[str, str]]] | None = None
        # The last `_reconciler_reads`: of the files `_ls_tree` lists, at one commit.
        self._reads: tuple[tuple[str, str], set[str]] | None = None
        self._views: dict[str, reconcilers.Views] = {}  # what each reconciler applies, by tree
        # Of the last trees rendered: the documents of each Flux Kustomization's build (`_flux_build`),
        # one list per build, for `duplicates` (each build is a reconciler source of its own).
        self._built: dict[str, list[list[Document]]] = {}
        # Of the last trees rendered: what Flux Kustomizations substitute from, as the cluster holds it
        # once the tree is applied (`_held_sources`): the documents as written, as built, and the
        # includes; then the sources, once asked for.
        self._held: dict[str, tuple[list[Document], list[Document], dict[str, list[str]]]] = {}
        self._held_found: dict[str, list[variables.SourceObject]] = {}
        self._remotes_now: list[str] = []  # the gated repository's URLs, for the run under way
        self._rendering = 0.0  # seconds counted renders took in the run under way (`_read`)
        # Of a tree rendered: the unreached kustomizations judged only through another (`_render`).
        self._render_notes: dict[str, list[str]] = {}

    def close(self) -> None:
        self.keyring.close()
        if self._owned_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)

    def __enter__(self) -> PresyncGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one run -----------------------------------------------------------------

    def run(
        self,
        repository: str,
        ref: str,
        gated_ref: str,
        *,
        watch: bool = False,
        initialize: bool = False,
        accept_gated_commit: str | None = None,
        accepted_by: str = "",
    ) -> Outcome:
        """Judge the tip of `ref` and advance `gated_ref` to it when it passes.

        A missing `gated_ref` is a first run only when the decision log holds no decision of
        this gate on it (the repository and gated ref), or `initialize` says the operator means
        one: otherwise it was deleted, and the run stops (exit 3) without moving anything.

        A `gated_ref` at a commit this gate did not leave it at (`_vet_gated`: the newest record
        of the gated ref in the decision log, and this process's own moves) was moved by someone
        else: the run stops (exit 3, recorded) without judging onward from it, unless
        `accept_gated_commit` names that commit (the operator, `accepted_by`, vouches for it;
        recorded). A name that is no full commit id, or not the gated commit, judges and records
        nothing (exit 2).

        Never raises for what the repository holds: every problem is in the outcome
        (and, once evaluation started, in the decision log).
        """
        started = time.perf_counter()
        self._rendering = 0.0
        ref, gated_ref = full_ref(ref), full_ref(gated_ref)
        out = Outcome(Action.ERROR, ExitCode.NOT_EVALUATED, repository, ref, gated_ref)
        context = DecisionContext(repository=_clean(repository), ref=ref)
        try:
            # A name git refuses is the caller's mistake, not a state of the repository: stop before
            # judging anything, and record nothing (the move would fail after an "allow" record).
            for flag, name in (("--ref", ref), ("--gated-ref", gated_ref)):
                why = ref_format_problem(name, timeout=self.settings.git_timeout_seconds)
                if why:
                    out.message = (
                        f"{flag} {name!r} is not a valid ref name: {why}; nothing was judged or recorded"
                    )
                    return _done(out, started)
        except Error as e:
            out.message = e.diagnostics()
            return _done(out, started)
        accept = accept_gated_commit.strip().lower() if accept_gated_commit is not None else None
        if accept is not None and not _FULL_ID.fullmatch(accept):
            out.exit_code = ExitCode.USAGE
            out.message = (
                f"--accept-gated-commit {accept_gated_commit!r} is not a full commit id (40 or 64 hex "
                "digits): name the commit the gated ref points at now, in full; nothing was judged or "
                "recorded"
            )
            return _done(out, started)
        try:
            git = self._open(repository, (ref, gated_ref))
            candidate = git.resolve(ref)
            if candidate is None:
                raise GitError(f"no such ref {ref}", where=_clean(repository), hint="check --ref")
            out.candidate = candidate
            gated = git.resolve(gated_ref)
            out.gated = gated
            if accept is not None and accept != gated:
                out.exit_code = ExitCode.USAGE
                out.message = (
                    f"--accept-gated-commit {accept[:12]}: {gated_ref} "
                    + (f"is at {gated}" if gated else "does not exist")
                    + ", so there is nothing to accept; nothing was judged or recorded"
                )
                return _done(out, started)
            accepted, gated_notes, known, judge_from = (
                self._vet_gated(git, out, gated, accept, accepted_by)
                if gated is not None
                else (None, [], None, None)
            )
            # Taken as found (`_vet_gated`: no record of it, and this process never saw it).
            adopted = (
                gated is not None
                and not accepted
                and known is None
                and (repository, gated_ref) not in self._left
            )
            self._left[(repository, gated_ref)] = ({gated} if gated else set(), known)
            # At the tip, nothing to judge; unless the gate's newest record moved the ref on from here
            # (`judge_from`): the step back to the tip is then the change, judged like any other.
            if gated == candidate and judge_from is None:
                out.action, out.exit_code = Action.ALREADY, ExitCode.PASS
                out.message = f"{gated_ref} is already at {candidate[:12]}"
                if accepted or (adopted and self.gate.recorder is not None):
                    self._record_already(out, context, candidate, accepted, gated_notes)
                return _done(out, started)
            key = (repository, ref, gated_ref)
            if watch and self._decided.get(key, ("", None, ""))[:2] == (candidate, gated):
                out.action, out.exit_code = Action.UNCHANGED, ExitCode.POLICY_FAILURE
                out.message = f"{candidate[:12]} was refused before ({self._decided[key][2]}); nothing moved"
                return _done(out, started)
            earlier = None
            if gated is None and self.gate.recorder is not None:
                ref_scope, scope = self._ref_scope(repository, gated_ref), self._scope(repository, gated_ref)
                earlier = self.gate.recorder.last_presync(GATE, ref_scope, scope)
                if earlier is None:  # its moves pruned, a later record still says where it was left
                    left = self.gate.recorder.gated_vouched(ref_scope, scope)
                    earlier = left.record_id if left is not None and left.commits else None
                if earlier is not None and not initialize:
                    raise GatedRefMissingError(
                        f"{gated_ref} does not exist, but this gate decided on it before (decision "
                        f"{earlier}): it was deleted, and a first run would check only the tip's "
                        "signature and no deletions; nothing moved",
                        where=_clean(repository),
                        hint=f"restore {gated_ref} to the commit it was last moved to (see the decision "
                        "log), or run once with --initialize to judge the tip as a first run",
                    )
            self._decide(
                git,
                out,
                context,
                candidate,
                gated,
                initialize=initialize,
                earlier=earlier,
                accepted=accepted,
                gated_notes=gated_notes,
                judge_from=judge_from,
            )
            if out.action == Action.REFUSED:
                self._decided[key] = (candidate, gated, out.decision.record_id if out.decision else "")
            return _done(out, started)
        except Error as e:
            out.message = e.diagnostics()
            if out.decision is None:  # record that this run could not evaluate
                own = (GatedRefMissingError, GatedRefMovedError, RenderBudgetError)
                rule = e.rule if isinstance(e, own) else "presync/git"
                problem = InputProblem(Source(_clean(repository)), rule, e.message, e.hint)
                if isinstance(e, GatedRefMovedError):  # the record keeps where the gate left the ref
                    context = dataclasses.replace(context, presync=e.presync)
                if not (watch and self._decided.get(("error", repository, ref)) == (e.message, None, "")):
                    out.decision = self.gate.evaluate([], [problem], gate=GATE, context=context)
                    self._decided[("error", repository, ref)] = (e.message, None, "")
            return _done(out, started)

    def _open(self, repository: str, refs: Sequence[str]) -> Git:
        timeout = self.settings.git_timeout_seconds
        if is_url(repository):
            git = self._remotes.get(repository)
            if git is None:
                git = open_remote(repository, self.cache_dir, refs, timeout=timeout)
                self._remotes[repository] = git
            else:
                fetch(git, refs)
        else:
            git = open_local(repository, timeout=timeout)
        git.config = {**self.keyring.git_config, **_identity_config(self._committer)}
        git.env = self.keyring.env
        return git

    def _record_already(
        self,
        out: Outcome,
        context: DecisionContext,
        candidate: str,
        accepted: Mapping[str, object] | None,
        notes: Sequence[str],
    ) -> None:
        """Record where the gated ref stays when there is nothing to judge (it is at the tip), but
        the gate did not know it there: an accepted commit, or a ref it has no record of (taken as
        found). Without the record, the next run would not know it either: an acceptance would be
        lost, and a ref taken as found then moved by someone else would be taken as found again
        (its commits never judged), however many runs saw it first."""
        presync: dict[str, object] = {
            "gatedRef": out.gated_ref,
            "refScope": self._ref_scope(out.repository, out.gated_ref),
            "vouched": [candidate],
        }
        if accepted:
            presync["acceptedGatedCommit"] = dict(accepted)
            said, shown = f"{out.ref} is at the accepted commit too: nothing was judged", "accepted"
        else:
            presync["adopted"] = True
            said = (
                f"{out.ref} is at it too: nothing was judged; recorded, so that a later move of "
                f"{out.gated_ref} by someone else stops the gate"
            )
            shown = "taken as found"
        out.decision = self.gate.evaluate(
            [], [], gate=GATE, context=dataclasses.replace(context, presync=presync), notes=[*notes, said]
        )
        out.exit_code = out.decision.exit_code()  # 3 when the record failed (fail closed)
        out.message += f" ({shown}: recorded)"

    def _vet_gated(
        self, git: Git, out: Outcome, gated: str, accept: str | None, accepted_by: str
    ) -> tuple[dict[str, object] | None, list[str], str | None, str | None]:
        """Check that `gated` is where this gate left the gated ref; returns what the operator
        accepted (for `subject.presync.acceptedGatedCommit`), notes for the decision, the id
        of the newest record of the ref (None: none), which this process now knows, and the
        commit to judge the change from when it is not `gated`: the one the newest record moved
        the ref on to, where the ref is at the commit that record found it at.

        Where the gate left it: the commits the newest record of the gated ref in the decision
        log vouches for (`Recorder.gated_vouched`: the one it moved to, and the one it found,
        should that move have failed), and where this process left it or found it vetted (what
        it knows without a log), unless the log holds a record newer than what the process knew
        then: another gate (a one-shot beside a `--watch`) moved the ref on, or stopped at a move,
        since, and a commit this process left behind is no place the gate left the ref (it would
        let a ref put back any number of steps pass, and override that stop). git says nothing
        trustworthy here: a ref's reflog is local to
        one clone and the notes ref is anyone's to push. Neither knowing the ref (a first run
        with this log, a log written before the ref was gated) judges onward from it as found,
        as before, and says so.

        Raises:
            GatedRefMovedError: the gate left the ref elsewhere, and `accept` does not name
                `gated` (the caller checked that, when given, it does).
            DecisionLogError: the log cannot be read (where the gate left the ref is unknown).
        """
        key = (out.repository, out.gated_ref)
        recorded = None
        if self.gate.recorder is not None:
            recorded = self.gate.recorder.gated_vouched(
                self._ref_scope(out.repository, out.gated_ref), self._scope(out.repository, out.gated_ref)
            )
        known = recorded.record_id if recorded else None
        mine, then = self._left.get(key, (None, None))
        if recorded is not None and then != known:
            mine = None  # stale: the log says where the gate left the ref since
        vouched = set(recorded.commits if recorded else ()) | (mine or set())
        if gated in vouched:
            # Where the gate found the ref, and its newest record moved it on (that move may have
            # failed, so the commit found is vouched for): the cluster may hold the commit moved to,
            # and a change judged from the one found would not see what it removes of it (a branch
            # rewritten from there, the ref put back one step).
            moved_on = recorded.judge_from if recorded is not None and recorded.judge_from != gated else None
            if moved_on is not None and not accept:
                if git.resolve(moved_on) is None:
                    raise GatedRefMovedError(
                        f"{out.gated_ref} is at {gated[:12]}, where this gate found it, but its newest "
                        f"decision ({recorded.origin if recorded else '?'}) moved it on to {moved_on[:12]}, "
                        "which the repository no longer holds: what the change removes of what the cluster "
                        f"may hold since cannot be judged, so nothing was judged, and nothing moved",
                        where=_clean(out.repository),
                        hint=f"push {moved_on} back to the repository (the branch it was on), or, once you "
                        f"have reviewed it, run once with --accept-gated-commit {gated} to judge onward from "
                        f"{gated[:12]} (recorded, with who accepted it)",
                        presync={
                            "gatedRef": out.gated_ref,
                            "refScope": self._ref_scope(out.repository, out.gated_ref),
                            "vouched": sorted(vouched),
                            "gatedFound": gated,
                            "judgedFrom": moved_on,  # the next run stops too, until accepted
                            "commits": [],
                        },
                    )
                return None, [], known, moved_on
            if accept and moved_on is None:
                out.warnings.append(
                    f"--accept-gated-commit {gated[:12]}: this gate left {out.gated_ref} there itself; "
                    "nothing to accept"
                )
            if accept and moved_on is not None:
                accepted_on: dict[str, object] = {
                    "commit": gated,
                    "by": accepted_by or "unknown",
                    "movedOnTo": moved_on,
                }
                return (
                    accepted_on,
                    [
                        f"--accept-gated-commit: {out.gated_ref} at {gated[:12]} was accepted by "
                        f"{accepted_by or 'an unknown user'} as the commit to judge onward from, although "
                        f"this gate's newest decision moved it on to {moved_on[:12]}"
                    ],
                    known,
                    None,
                )
            return None, [], known, None
        notes: list[str] = []
        if recorded is None and mine is None:
            notes = [
                f"this gate has no record of where it left {out.gated_ref} (it never moved it with this "
                + ("decision log" if self.gate.recorder is not None else "process")
                + f"): {gated[:12]} is taken as found, and only the commits after it are judged"
            ]
            if self.gate.recorder is None:
                notes.append(
                    f"no decision log is set: a {out.gated_ref} moved by someone else is not detected "
                    "(only, within one --watch process, a move away from where the process left it)"
                )
            if not accept:
                return None, notes, known, None
        where = _clean(out.repository)
        expected = (recorded.commits if recorded else ()) or tuple(sorted(mine or ()))
        moved_to = (recorded.moved_to if recorded else None) or (expected[-1] if expected else None)
        by = (
            f"decision {recorded.origin}" if recorded else "this process" if mine is not None else "no record"
        )
        others = [c[:12] for c in expected if c != moved_to]
        left = (
            f"{moved_to[:12]}" + (f" (or {', '.join(others)}, had that move failed)" if others else "")
            if moved_to
            else "nowhere (it never created it)"
        )
        if accept:
            accepted: dict[str, object] = {"commit": gated, "by": accepted_by or "unknown"}
            if expected or recorded:
                accepted["expected"] = list(expected)
            if recorded:
                accepted["expectedBy"] = recorded.origin
            notes.append(
                f"--accept-gated-commit: {out.gated_ref} at {gated[:12]} was accepted by "
                f"{accepted_by or 'an unknown user'} as the commit to judge onward from"
                + (
                    f", although this gate left it at {left} ({by}): what was committed between was not "
                    "judged by this gate"
                    if expected or recorded
                    else ""
                )
            )
            return accepted, notes, known, None
        past, commits = self._past_gate(git, moved_to, gated)
        presync: dict[str, object] = {
            "gatedRef": out.gated_ref,
            "refScope": self._ref_scope(out.repository, out.gated_ref),
            "vouched": list(expected),  # carried forward: where the gate left the ref is unchanged
            "gatedFound": gated,
            "commits": [_commit_entry(c) for c in commits],
        }
        if recorded:
            presync["expectedBy"] = recorded.origin
            if recorded.judge_from:  # carried on: put back at a vouched commit, judged from there
                presync["judgedFrom"] = recorded.judge_from
        raise GatedRefMovedError(
            f"{out.gated_ref} is at {gated[:12]}, but this gate left it at {left} ({by}): someone else "
            f"moved it, so the reconciler may be applying what the gate never judged; {past}. Nothing was "
            f"judged onward from {gated[:12]}, and nothing moved",
            where=where,
            hint=(
                f"put {out.gated_ref} back where the gate left it (`git update-ref {out.gated_ref} "
                f"{moved_to} {gated}`, or `git push --force-with-lease={out.gated_ref}:{gated} REMOTE "
                f"{moved_to}:{out.gated_ref}`): the next run judges every commit from there, those pushed "
                "past the gate included; or, once you have reviewed it, run once with "
                f"--accept-gated-commit {gated} to judge onward from it (recorded, with who accepted it)"
                if moved_to
                else f"delete {out.gated_ref} (the gate never created it) so that the next run judges the "
                f"tip as a first run, or, once you have reviewed it, run once with --accept-gated-commit "
                f"{gated} to judge onward from it (recorded, with who accepted it)"
            ),
            presync=presync,
        )

    def _past_gate(self, git: Git, left: str | None, found: str) -> tuple[str, list[Commit]]:
        """What lies between where the gate left the gated ref (`left`) and where it was found: a
        description for the stop (the first commits, with what `commits` rules they break), and the
        commits (for the record, so `log query --commit` finds the stop by any of them)."""
        if left is None:
            return "the gate never created it", []
        limit = self.settings.max_commits
        try:
            if not git.is_ancestor(left, found):
                return f"{found[:12]} does not descend from {left[:12]} (the ref was rewound or replaced)", []
            commits = self.keyring.vet(git.commits(git.range(found, left, limit=limit)[-limit:]))
        except GitError as e:
            return f"what lies between cannot be read ({e.message})", []
        weight = severity(True, self.config.mode)
        shown = []
        for commit in commits[:_PAST_SHOWN]:
            broken = sorted({f.rule for f in commit_findings(commit, self.config.commits, weight)})
            shown.append(
                f"{commit.sha[:12]} {commit.subject!r}" + (f" ({', '.join(broken)})" if broken else "")
            )
        more = len(commits) - len(shown)
        return (
            f"{len(commits)}{'+' if len(commits) >= limit else ''} commit{'s' if len(commits) != 1 else ''} "
            f"pushed past the gate: {'; '.join(shown)}" + (f"; and {more} more" if more > 0 else "")
        ), commits

    def _decide(
        self,
        git: Git,
        out: Outcome,
        context: DecisionContext,
        candidate: str,
        gated: str | None,
        *,
        initialize: bool = False,
        earlier: str | None = None,
        accepted: Mapping[str, object] | None = None,
        gated_notes: Sequence[str] = (),
        judge_from: str | None = None,
    ) -> None:
        commits_cfg = self.config.commits
        weight = severity(True, self.config.mode)  # of the gate's own findings: commits, deletions
        extra: list[DocumentResult] = []
        notes: list[str] = list(gated_notes)
        # `found` is where the ref is (the commits after it are judged, and the move expects it);
        # `gated`, what the cluster holds: there too, unless the gate's newest record moved the ref
        # on from it (`judge_from`, `_vet_gated`), and the change is judged from that move.
        found = gated
        if judge_from is not None:
            gated = judge_from
            notes.append(
                f"{out.gated_ref} is at {found[:12] if found else '(none)'}, where this gate found it, but "
                f"its newest decision moved it on to {judge_from[:12]}: what the cluster may hold since, "
                f"so the change is judged from {judge_from[:12]}"
            )
        tree = git.tree_of(candidate)
        gated_tree = git.tree_of(gated) if gated else None
        fast_forward = gated is None or git.is_ancestor(gated, candidate)
        scope = self._scope(out.repository, out.gated_ref)
        paths_tree = self._paths_tree(git, candidate)
        self._remotes_now = self._remotes_of(git, out.repository)

        # 1. The range. A first run checks the tip alone: history before the gate is taken as it is.
        if gated is None:
            shas = [candidate]
            notes.append(f"{out.gated_ref} does not exist yet: only the tip commit's signature is checked")
            if initialize and earlier:
                notes.append(
                    f"--initialize: {out.gated_ref} is judged as on a first run, although this gate "
                    f"decided on it before (decision {earlier})"
                )
            elif self.gate.recorder is None:
                notes.append("no decision log is set: a deleted gated ref cannot be told from a first run")
        else:
            shas = git.range(candidate, found, limit=self.settings.max_commits)
            if len(shas) > self.settings.max_commits:
                raise GitError(
                    f"the range {(found or gated)[:12]}..{candidate[:12]} holds more than "
                    f"{self.settings.max_commits} commits",
                    where=_clean(out.repository),
                    hint="raise presync.maxCommits, or advance the gated ref in smaller steps",
                )
        self.keyring.check()  # the revoked signers file is read at every run, as git reads it
        commits = self.keyring.vet(git.commits(shas))
        tip = (
            next((c for c in commits if c.sha == candidate), None)
            or self.keyring.vet(git.commits([candidate]))[0]
        )
        # What git reads of each commit must be what Flux's go-git reads, and what its object names:
        # a range cut short (a shallow clone, grafts) would leave commits unjudged.
        git.check_commits(
            [*commits, *([] if tip in commits else [tip])], whole=set(shas) if gated is not None else ()
        )
        presync: dict[str, object] = {
            "gatedRef": out.gated_ref,
            "paths": _scope_paths(self.settings.paths),
            "protectedKinds": sorted(set(commits_cfg.protected_kinds)),
            "scope": scope,
            "refScope": self._ref_scope(out.repository, out.gated_ref),
            "pathsTree": paths_tree,
            "fastForward": fast_forward,
        }
        if gated is not None:
            presync["gatedBefore"] = found
            if judge_from is not None:
                presync["judgedFrom"] = judge_from
            if accepted:
                presync["acceptedGatedCommit"] = dict(accepted)
        elif initialize:
            presync["initialized"] = True  # the operator said: a first run (--initialize)
            if earlier:
                presync["initializedAfter"] = earlier
        # Every commit of the range, so `log query --commit/--actor` finds this decision by any of
        # them, not only by the tip (record.index_terms). Who pushed is not in git: see `invoker`.
        presync["commits"] = [_commit_entry(c) for c in commits]
        context = dataclasses.replace(
            context,
            commit=candidate,
            tree=tree,
            presync=presync,
            actor=Actor(
                author=GitIdentity(tip.author_name, tip.author_email),
                committer=GitIdentity(tip.committer_name, tip.committer_email),
                signer=signer_record(tip),
                ci=self._invoker,
            ),
        )

        # 2. Rollback: going back (not a fast-forward) to what the reconcilers apply of the paths
        # (`_paths_tree`) that this gated ref was moved to before, by this gate in enforce mode. A
        # fast-forward is never a rollback: a revert is a change like any other, and its deletions
        # need approval.
        rollback_from = None
        if commits_cfg.allow_rollback and not fast_forward:
            assert found is not None
            rollback_from = self._moved_before(scope, paths_tree, found)  # confirmed: the ref is at `found`
            if self.gate.decision_log is None:
                notes.append("commits.allowRollback needs a decision log to know approved trees: none is set")
            elif rollback_from is None:
                notes.append(
                    f"what the reconcilers apply of {', '.join(self.settings.paths)} at {candidate[:12]} "
                    "(the files, the .sourceignore files and checkout attributes that decide how they read "
                    f"them) is not a state {out.gated_ref} was moved to before (by an enforce-mode decision "
                    "of this gate, for the same repository, paths and protected kinds; one recorded before "
                    "these counted does not count), so this is not a rollback"
                )
        if rollback_from is not None:
            presync["rollbackOf"] = rollback_from
            notes.append(
                f"rollback: {out.gated_ref} was moved to these files before (decision {rollback_from})"
            )

        # 3. Fast-forward: a rewritten branch is refused unless it is a rollback.
        if not fast_forward and rollback_from is None:
            assert gated is not None
            # Judged from the commit the gate moved the ref on to (`judge_from`), the ref is elsewhere:
            # say both, and the way out where that move failed (the cluster never held it).
            moved_on = (
                f"{gated[:12]}, to which this gate's newest decision moved {out.gated_ref} (it is at "
                f"{found[:12] if found else '(none)'}, where that decision found it)"
                if judge_from is not None
                else f"{out.gated_ref} at {gated[:12]}"
            )
            finding = Finding(
                rule="non-fast-forward",
                severity=weight,
                message=f"{out.ref} at {candidate[:12]} does not descend from {moved_on}: "
                "the branch was rewritten (force-push)",
                source="presync",
                fix="restore the branch to a descendant of the gated commit (revert instead of rewriting), "
                "or set commits.allowRollback to go back to files the gated ref held before"
                + (
                    f"; if that move of {out.gated_ref} failed (the cluster never held {gated[:12]}), once "
                    f"you have reviewed it, run once with --accept-gated-commit {found} to judge from "
                    f"{found[:12]}"
                    if judge_from is not None and found
                    else ""
                ),
                policy="commits",
                metadata={"gated": gated, "candidate": candidate, **({"found": found} if judge_from else {})},
            )
            extra.append(_commit_result(tip, [finding]))

        # 4. Commits: signatures, authors, committers.
        for commit in commits:
            extra.append(_commit_result(commit, commit_findings(commit, commits_cfg, weight)))
        if not commits_cfg.require_signatures:
            notes.append("commit signatures are not required (commits.allowedSigners / gpgKeys not set)")
        notes.extend(
            f"commits.approvers: {pattern!r} is no SSH principal of allowed_signers and no GPG key "
            "fingerprint or id, so it approves nothing (a GPG key's user id names nobody)"
            for pattern in self.keyring.unbound_approvers(commits_cfg.approvers)
        )

        # 5. The candidate tree, rendered and evaluated whole. The gated tree first: Flux's first
        # reconcile of the candidate substitutes with the `substituteFrom` objects the cluster holds,
        # as the gated tree left them (`_held_sources`).
        # The Kustomizations the cluster holds are the gated tree's too, until a reconcile applies the
        # candidate's: one whose spec changes reconciles the candidate with its old spec first.
        # Judged from the commit the gate moved the ref on to (`judge_from`), the cluster may hold
        # either: that commit's, or the one found's (the move failed, or the ref put back was applied).
        held: list[list[variables.SourceObject]] | None = None
        stale: dict[str, changes.FluxBuild] = {}
        if gated is not None and gated_tree is not None:
            held = []
            for state in dict.fromkeys(c for c in (found, gated) if c):
                state_tree = gated_tree if state == gated else git.tree_of(state)
                self._inventory(git, state, state_tree)
                held.append(self._held_sources(git, state, state_tree))
                stale.update((b.identity, b) for b in self._held_builds(git, state, state_tree))
        documents, problems = self._render(git, candidate, tree, before=held, stale=list(stale.values()))
        if gated is None and (read := changes.substitute_from(documents)):
            notes.append(
                f"{out.gated_ref} does not exist yet: what the cluster holds of {', '.join(read)} is not "
                "known, so what Flux Kustomizations substitute from "
                f"{'it' if len(read) == 1 else 'them'} was judged with the tree's values only"
            )
        # Files Argo CD's work tree may still hold converted by an earlier checkout.
        problems.extend(self._stale(git, candidate, [*{c: None for c in (found, gated) if c}, *shas]))
        notes.extend(self._render_notes.get(tree, ()))
        # The candidate's objects, as the tree holds them once applied: never a copy judged as Flux's
        # first reconcile applies it (`applied_with`), which would hide a removal or a source change.
        after = self._inventory(git, candidate, tree)[0]
        # A Flux Kustomization of this repository applying a path the gate does not read.
        extra.extend(
            changes.unjudged_paths(
                documents,
                self.settings.paths,
                remotes=self._remotes_now,
                severity=severity(False, self.config.mode),
            )
        )
        # One object twice under one path: which copy is applied depends on the reconciler. A Flux
        # Kustomization's build of a path is a source of its own beside the path as it is written.
        built = self._built.get(tree, [])
        in_builds = {id(d) for group in built for d in group}
        for group in [[d for d in documents if id(d) not in in_builds], *built]:
            extra.extend(
                changes.duplicates(group, self.settings.paths, scopes=self.gate.scopes, severity=weight)
            )

        # 6. Removed protected objects; the objects as they are now (judged: an UPDATE of them).
        old: list[Mapping[str, object]] = []
        before: Mapping[changes.ObjectKey, changes.Seen] = {}
        rollback_note = (
            f"a rollback to files {out.gated_ref} held before (decision {rollback_from})"
            if rollback_from
            else ""
        )
        granted = self._vet_approvals(git, changes.approvals(commits, commits_cfg.approvers), gated)
        if gated is not None and gated_tree is not None:
            before, before_problems = self._inventory(git, gated, gated_tree)
            old = self._objects.get(gated_tree) or []
            # A path added to presync.paths that the gated tree does not have yet holds nothing
            # there: everything under it is an addition, judged as such.
            # A checkout attribute there was judged when the gated ref moved (or before the gate
            # looked for them): the candidate's own, and the files it shares with the gated tree
            # (`_stale`), are what stop the run, else nothing could move.
            before_problems = [
                p for p in before_problems if p.rule not in ("presync/path", "presync/checkout")
            ]
            if before_problems:
                problems.append(
                    InputProblem(
                        Source(f"{out.gated_ref}@{gated[:12]}"),
                        "presync/diff",
                        "the gated tree cannot be rendered, so deletions cannot be found: "
                        + before_problems[0].message,
                        before_problems[0].hint,
                    )
                )
            extra.extend(
                changes.removals(
                    before,
                    after,
                    protected_kinds=commits_cfg.protected_kinds,
                    granted=granted,
                    severity=weight,
                    rollback_note=rollback_note,
                )
            )
        # 7. Reconciler sources added, changed or removed: they decide what the cluster pulls, past
        # the gate (on a first run every one of the tree is an addition).
        extra.extend(
            changes.sources(before, after, granted=granted, severity=weight, rollback_note=rollback_note)
        )

        decision = self.gate.evaluate(
            documents, problems, gate=GATE, context=context, extra=extra, notes=notes, old=old
        )
        out.decision = decision
        code = decision.exit_code()
        if code != ExitCode.PASS:
            out.action = Action.REFUSED if code == ExitCode.POLICY_FAILURE else Action.ERROR
            out.exit_code = code
            out.message = (
                f"{out.gated_ref} stays at {found[:12] if found else '(none)'}: {candidate[:12]} "
                + ("was refused" if code == ExitCode.POLICY_FAILURE else "could not be evaluated")
            )
            self._note(git, out, candidate, decision, pushed_with_ref=False)
            return

        # 8. Passed: move the gated ref (compare-and-swap), note, push.
        action = Action.CREATED if gated is None else Action.ADVANCED if fast_forward else Action.ROLLED_BACK
        remote = is_url(out.repository)
        git.update_ref(out.gated_ref, candidate, found, f"trustgate presync: {decision.record_id or action}")
        self._note(git, out, candidate, decision, pushed_with_ref=remote)
        if remote:
            try:
                push(git, out.gated_ref, candidate, found)
            except GitError:
                # The local mirror must not claim what the remote does not have.
                git.update_ref(
                    out.gated_ref, found, candidate, "trustgate presync: push failed"
                ) if found else (git.run("update-ref", "-d", out.gated_ref))
                raise
            if self.settings.notes:
                refused = push_notes(git)
                if refused:
                    out.warnings.append(f"the gated ref was pushed, but the git note was not: {refused}")
        key = (out.repository, out.gated_ref)
        self._left[key] = ({candidate}, decision.record_id or self._left.get(key, (set(), None))[1])
        out.action, out.exit_code = action, ExitCode.PASS
        verb = {"created": "created at", "advanced": "advanced to", "rolled-back": "rolled back to"}[action]
        out.message = f"{out.gated_ref} {verb} {candidate[:12]}" + (f" (from {found[:12]})" if found else "")

    # -- pieces ------------------------------------------------------------------

    def _remotes_of(self, git: Git, repository: str) -> list[str]:
        """The gated repository's URLs: `--repo` when it is one, else its remotes' (none: not known)."""
        if is_url(repository):
            return [repository]
        listed = git.run("config", "--get-regexp", r"^remote\..*\.url$", check=False)
        return [
            line.split(None, 1)[1]
            for line in listed.stdout.decode("utf-8", "replace").splitlines()
            if " " in line
        ]

    def _scope(self, repository: str, gated_ref: str) -> str:
        """What a rollback may borrow approvals within: one repository, gated ref, set of paths and
        protected kinds (a digest; the record holds the parts too)."""
        return content_hash(
            {
                "repository": _where(repository),
                "gatedRef": gated_ref,
                "paths": _scope_paths(self.settings.paths),
                "protectedKinds": sorted(set(self.config.commits.protected_kinds)),
            }
        )

    def _ref_scope(self, repository: str, gated_ref: str) -> str:
        """Which decisions were about this gated ref: one repository and gated ref, whatever the
        paths (a digest). A missing gated ref with any of them was deleted, not never made."""
        return content_hash({"repository": _where(repository), "gatedRef": gated_ref})

    def _paths_tree(self, git: Git, commit: str) -> str:
        """A digest of what the reconcilers apply of `commit`: the files under `presync.paths` and
        those elsewhere in the repository that their kustomizations include (mode, object, path of
        each), and what decides which of them a reconciler reads and how, although it lies outside
        them: under Flux, every `.sourceignore` (`_source_ignores`: the root's and its parents' leave
        files of the paths out); under Argo CD, the checkout attributes of the files
        (`_checkout_attributes`); and `presync.reconciler` and `argocd.recurse`. Whatever else the
        commit changes does not count.

        `version` 2: a digest recorded by an older release (the files alone) never equals one of
        these, so a rollback to a state it recorded is not one (fail closed).
        """
        entries = self._ls_tree(git, commit)
        chosen = reconcilers.chosen(self.settings.reconciler)
        ignores = self._source_ignores(git, commit) if reconcilers.FLUX in chosen else {}
        return content_hash(
            {
                "version": 2,
                "files": sorted([e.mode, e.object, e.path] for e in entries),
                "reconciler": self.settings.reconciler,
                "argocdRecurse": self.settings.argocd_recurse,
                "sourceIgnores": sorted([p, hashlib.sha256(c).hexdigest()] for p, c in ignores.items()),
                "attributes": sorted(
                    [p, name, value]
                    for p, found in self._checkout_attributes(git, commit).items()
                    for name, value in found.items()
                ),
            }
        )

    def _ls_tree(self, git: Git, commit: str) -> list[TreeEntry]:
        """The files under `presync.paths` at `commit`, then those of the repository outside them that
        their kustomizations include (`_included`); the candidate's are listed once per run."""
        key = (str(git.directory), commit)
        if self._listed is None or self._listed[0] != key:
            paths = self.settings.paths
            self._listed = (key, _included(git, commit, git.ls_tree(commit, paths), paths))
        return self._listed[1]

    def _checkout_attributes(self, git: Git, commit: str) -> dict[str, dict[str, str]]:
        """Under Argo CD (`presync.reconciler` `argocd` or `any`): the checkout attributes
        (`git.CHECKOUT_ATTRIBUTES`) of the regular files `_ls_tree` lists at `commit`, as git
        assigns them from the commit's `.gitattributes` (Argo CD checks out with the git command
        line, which applies them); {} under Flux alone (go-git applies none)."""
        if reconcilers.ARGOCD not in reconcilers.chosen(self.settings.reconciler):
            return {}
        key = (str(git.directory), commit)
        if self._attributes is None or self._attributes[0] != key:
            files = [e.path for e in self._ls_tree(git, commit) if e.mode.startswith("100")]
            self._attributes = (key, git.checkout_attributes(commit, files))
        return self._attributes[1]

    def _reconciler_reads(self, git: Git, commit: str) -> set[str]:
        """Of the files `_ls_tree` lists at `commit`, those a reconciler reads (`_reads`); kept for
        the last commit asked."""
        key = (str(git.directory), commit)
        if self._reads is None or self._reads[0] != key:
            self._reads = (key, _reads(git, self._ls_tree(git, commit)))
        return self._reads[1]

    def _converted(self, git: Git, commit: str, tree: str) -> list[InputProblem]:
        """The files a reconciler reads (`_reconciler_reads`) that Argo CD's checkout writes other than
        committed (`git.checkout_conversions`): what it applies is then not what the gate judges (the
        blob), so the run stops (exit 3). Such a file that no reconciler reads is only noted."""
        found = self._checkout_attributes(git, commit)
        if not found:
            return []
        read = self._reconciler_reads(git, commit)
        out = []
        unread = []
        for path, attributes in sorted(found.items()):
            converted = checkout_conversions(attributes)
            if not converted:
                continue
            if path not in read:
                unread.append(path)
                continue
            out.append(
                InputProblem(
                    Source(path),
                    "presync/checkout",
                    f"{path} has the attribute {', '.join(converted)} (.gitattributes): Argo CD's "
                    "`git checkout` writes other bytes than committed, so what it would apply is not "
                    "what trustgate reads",
                    "remove the attribute for the files under presync.paths, and change each such file's "
                    "bytes in the same commit (a comment will do): a work tree that checked this commit out "
                    "keeps the converted file until its content changes; commit the files as they are to be "
                    "applied (UTF-8, LF line ends); if only Flux applies them (go-git applies no "
                    "attributes), set presync.reconciler: flux",
                )
            )
        if unread:
            shown = ", ".join(quoted(p) for p in unread[:5]) + (
                f" and {len(unread) - 5} more" if unread[5:] else ""
            )
            self._render_notes.setdefault(tree, []).append(
                f"{shown}: Argo CD's checkout converts {'them' if unread[1:] else 'it'} (.gitattributes), "
                "but no reconciler reads such a file (Argo CD's directory source reads .yaml, .yml, .json "
                "and .jsonnet files, kustomize what a kustomization names, Helm a chart's files): not judged"
            )
        return out

    def _stale(self, git: Git, candidate: str, earlier: Sequence[str]) -> list[InputProblem]:
        """Under Argo CD: the files of `candidate` that a reconciler reads and that Argo CD's work tree
        may hold converted by an earlier checkout, so it would apply other bytes than the blob.

        Argo CD's repo-server keeps one work tree per repository URL and moves it with `git checkout
        --force` and `git clean -ffdx`; git rewrites only the files whose index entry changes. A file
        that another commit of `earlier` (the gated commit, the range) holds with the same mode and
        blob, under an attribute that converts it, stays converted when the candidate is checked out,
        even though the candidate gives it no such attribute. Only such commits whose `.gitattributes`
        differ from the candidate's are asked (with the same ones, the candidate's own attributes,
        `_converted`, decide). Revisions outside `earlier` are not seen (README: pre-sync).
        """
        if reconcilers.ARGOCD not in reconcilers.chosen(self.settings.reconciler):
            return []
        read = self._reconciler_reads(git, candidate)
        own = {
            p for p, found in self._checkout_attributes(git, candidate).items() if checkout_conversions(found)
        }
        files = [
            e.path
            for e in self._ls_tree(git, candidate)
            if e.mode.startswith("100") and e.path in read and e.path not in own
        ]
        out: list[InputProblem] = []
        flagged: set[str] = set()
        others = [c for c in dict.fromkeys(earlier) if c != candidate]
        for commit, changed in git.changed_paths(candidate, others).items():
            if not any(p.rpartition("/")[2] == ".gitattributes" for p in changed):
                continue
            shared = [p for p in files if p not in changed and p not in flagged]
            for path, found in sorted(git.checkout_attributes(commit, shared).items()):
                converted = checkout_conversions(found)
                if not converted:
                    continue
                flagged.add(path)
                out.append(
                    InputProblem(
                        Source(path),
                        "presync/checkout",
                        f"{path} had the attribute {', '.join(converted)} (.gitattributes) at {commit[:12]}, "
                        f"with the content it has at {candidate[:12]}: Argo CD's `git checkout` rewrites a "
                        f"file only when its content changes, so a work tree that checked out {commit[:12]} "
                        "keeps the converted bytes, and Argo CD would apply them",
                        "change the file's bytes in a new commit (a comment will do), so that Argo CD's "
                        "checkout writes it anew: removing the attribute does not rewrite a file whose "
                        "content stays the same",
                    )
                )
        return out

    def _moved_before(self, scope: str, paths_tree: str, gated: str) -> str | None:
        """The decision that moved this gated ref to these files before, or None.

        Counts only a record of this scope that allowed (allow or warn) in enforce mode, whose
        move is confirmed: the gated ref is there now, or a later run of this scope found it
        there (the record is written before the move, which may then fail). Records without
        `subject.presync` (older ones) have no index terms for this: they never count.
        """
        if self.gate.recorder is None:
            return None
        return self.gate.recorder.earlier_approval(GATE, scope, paths_tree, gated)

    def _present_paths(self, git: Git, commit: str) -> tuple[list[str], bool, list[InputProblem]]:
        """The configured paths that exist at `commit`, whether any file does, and what the export
        would miss (links out of the paths, submodules); checks the limits."""
        entries = self._ls_tree(git, commit)
        total = sum(e.size for e in entries)
        if len(entries) > self.settings.max_files or total > self.settings.max_tree_bytes:
            raise GitError(
                f"the tree at {commit[:12]} holds {len(entries):,} files, {total:,} bytes under "
                f"{', '.join(self.settings.paths)}; the limits are {self.settings.max_files:,} files, "
                f"{self.settings.max_tree_bytes:,} bytes",
                hint="narrow presync.paths to what the reconciler applies, "
                "or raise presync.maxFiles / maxTreeBytes",
            )
        present = []
        for path in self.settings.paths:
            p = repo_path(path)
            if not p or any(within(e.path, p) for e in entries):
                present.append(path)
        unseen = _unseen_content(git, entries, self.settings.paths)
        if reconcilers.ARGOCD in reconcilers.chosen(self.settings.reconciler):
            unseen.extend(_argocd_charts(entries, self.settings.paths))
        return present, bool(entries), unseen

    def _render(
        self,
        git: Git,
        commit: str,
        tree: str,
        *,
        before: Sequence[Sequence[variables.SourceObject]] | None = None,
        stale: Sequence[changes.FluxBuild] = (),
    ) -> tuple[list[Document], list[InputProblem]]:
        """Export `commit` (its `presync.paths`, and what their kustomizations include from the
        repository) and load the paths as `trustgate check` would, paths relative. `before`: the
        `substituteFrom` objects the cluster holds before this tree is applied (`_held_sources` of
        the gated tree; one list for each state it may be in), for Flux's first reconcile
        (`_flux_build_one`); `stale`: the builds of the
        Kustomizations the cluster holds then (`_held_builds`), each of which may reconcile this
        tree before its own new spec is applied (`_flux_builds`)."""
        self._render_notes.pop(tree, None)
        present, any_files, unseen = self._present_paths(git, commit)
        documents: list[Document] = []
        as_written: set[int] = set()  # the documents read as written (not a reconciler's build)
        includes: dict[str, list[str]] = {}  # a kustomization's directory -> the paths it includes
        problems: list[InputProblem] = [
            InputProblem(
                Source(path),
                "presync/path",
                f"{path} is not in the tree at {commit[:12]}",
                "presync.paths names directories of the repository (like a Flux Kustomization's path); "
                "if it was removed on purpose, remove it there too",
            )
            for path in self.settings.paths
            if path not in present
        ]
        problems.extend(unseen)  # links and submodules the reconciler would follow, trustgate not
        problems.extend(self._converted(git, commit, tree))  # files Argo CD's checkout rewrites
        entries = self._ls_tree(git, commit)
        files = git.files(entries) if present and any_files else {}
        built: list[list[Document]] = []
        # As Flux's first reconcile applies them (`before`'s values, `stale` specs): one list a source.
        firsts: list[list[Document]] = []
        if files is not None:  # plain manifests: read in memory, in the order the loader walks a directory
            for unit in _units(files, present):
                docs, probs = loader.read_unit(unit, self.config.limits)
                documents.extend(docs)
                problems.extend(probs)
            as_written = {id(d) for d in documents}
            # A Flux Kustomization that adds to what it builds (a namespace, components): built as it does.
            builds, _ = self._builds(documents)
            if any(not b.plain and b.reconciler == reconcilers.FLUX for b in [*builds, *stale]):
                with tempfile.TemporaryDirectory(prefix="trustgate-tree-") as tmp:
                    root = Path(tmp)
                    git.export(entries, root)
                    docs, probs, built, firsts = self._flux_build(
                        git,
                        commit,
                        tree,
                        root,
                        documents,
                        {str(root / name) for name in files},
                        includes,
                        before,
                        stale,
                    )
                    prefix = str(root) + "/"
                    documents.extend(_relative_document(d, prefix) for d in docs)
                    firsts = [[_relative_document(d, prefix) for d in group] for group in firsts]
                    problems.extend(_relative_problem(p, prefix) for p in probs)
        else:  # kustomizations (or links): kubectl needs the files on disk
            with tempfile.TemporaryDirectory(prefix="trustgate-tree-") as tmp:
                root = Path(tmp)
                git.export(entries, root)
                units = loader.plan([str(root / p) for p in present], dot_names=True)
                # What a reconciler applies in place of a kustomization it does not render: judged too.
                reading = self._reading(git, commit, tree)
                planned = {u.path for u in units}
                units.extend(u for u in _raw_units(reading, entries, root) if u.path not in planned)
                # A kustomization under the paths that no unit renders (one below a rendered
                # kustomization that does not name it): a reconciler may point at it; judged too.
                planned = {u.path for u in units}
                alone, includers = _unreached(reading, units, root)
                alone = [u for u in alone if u.path not in planned]
                for unit in units:
                    docs, probs = self._read(unit, root)
                    documents.extend(docs)
                    problems.extend(probs)
                # Each rendered alone; one that fails alone while another that includes it renders
                # is no problem (no reconciler could apply it alone either): noted.
                failed: dict[str, list[InputProblem]] = {}
                clean: set[str] = set()
                for unit in alone:
                    docs, probs = self._read(unit, root, counted=True)
                    documents.extend(docs)
                    if probs:
                        failed[unit.path] = probs
                    else:
                        clean.add(unit.path)
                prefix = str(root) + "/"
                excused: set[str] = set()
                for where, probs in failed.items():
                    through = sorted(includers.get(where, set()) & clean)
                    if not through:
                        problems.extend(probs)
                        continue
                    excused.add(where)
                    name = where.removeprefix(prefix) if where != str(root) else "."
                    names = ", ".join(t.removeprefix(prefix) if t != str(root) else "." for t in through)
                    self._render_notes.setdefault(tree, []).append(
                        f"{name}: no rendered kustomization includes it and it does not render alone "
                        f"(as a reconciler would apply it); judged through {names}, which includes it"
                    )
                # What each Flux Kustomization of the tree builds (its path, whether or not a unit of
                # its own, with what it adds): judged as it builds it.
                # A path read as it is: a unit, or an unreached kustomization that rendered alone (or
                # whose failure is a problem already); one that failed but is excused is built again.
                read = {u.path for u in units} | clean | {u.path for u in alone if u.path not in excused}
                as_written = {id(d) for d in documents}
                includes = _includes(reading, root)
                docs, probs, built, firsts = self._flux_build(
                    git, commit, tree, root, documents, read, includes, before, stale
                )
                documents.extend(docs)
                problems.extend(probs)
                prefix = str(root) + "/"
                for doc in [*documents, *(d for group in firsts for d in group)]:
                    doc.source = _relative(doc.source, prefix)
                problems = [_relative_problem(p, prefix) for p in problems]
        # What the tree's Kustomizations substitute from, once it is applied: for the next candidate.
        self._held.pop(tree, None)
        self._held_found.pop(tree, None)
        self._held[tree] = (
            [d for d in documents if id(d) in as_written],
            [d for d in documents if id(d) not in as_written],
            includes,
        )
        if as_written and reconcilers.FLUX in reconcilers.chosen(self.settings.reconciler):
            # What only substituting Kustomizations apply is judged as each applies it (their builds),
            # not as written. Under `any`, another reconciler (Argo CD, kubectl) may apply the files
            # as written, substituting nothing: judged as written too, and the way out is said.
            only = changes.substituted_only(
                documents, self.settings.paths, remotes=self._remotes_now, includes=includes
            )
            if self.settings.reconciler == reconcilers.FLUX:
                documents = [d for d in documents if id(d) not in as_written or not only(d)]
            elif written_too := sorted({d.source.file for d in documents if id(d) in as_written and only(d)}):
                shown = ", ".join(written_too[:3]) + (
                    f" and {len(written_too) - 3} more" if len(written_too) > 3 else ""
                )
                self._render_notes.setdefault(tree, []).append(
                    f"{shown}: only substituting Flux Kustomizations apply "
                    f"{'it' if len(written_too) == 1 else 'them'}, "
                    "but presync.reconciler is any (another reconciler may apply the files as written), so "
                    "each was judged as written too; if Flux alone applies these paths, set "
                    "presync.reconciler: flux"
                )
        # Flux's first reconcile of the candidate: judged, never what the tree holds once applied
        # (the inventory: deletions, sources), and a reconciler source of its own.
        judged = [*documents, *(d for group in firsts for d in group)]
        built = [*built, *(group for group in firsts if group)]
        self._trees[tree] = (
            changes.inventory(
                documents, self.gate.scopes, self.settings.paths, self._reading(git, commit, tree).unapplied
            ),
            list(problems),
        )
        self._objects.pop(tree, None)
        self._objects[tree] = [d.obj for d in documents if d.kubernetes]
        self._built.pop(tree, None)
        self._built[tree] = built
        while len(self._objects) > 4:  # a run needs two: the candidate's, the gated tree's
            self._objects.pop(next(iter(self._objects)))
        while len(self._built) > 4:
            self._built.pop(next(iter(self._built)))
        while len(self._held) > 4:
            self._held.pop(next(iter(self._held)))
        return judged, problems

    def _held_sources(self, git: Git, commit: str, tree: str) -> list[variables.SourceObject]:
        """The `substituteFrom` objects the cluster holds once `tree` (rendered: `_render`) is
        applied, as Flux Kustomizations find them (`changes.substitution_sources`)."""
        if tree not in self._held:
            self._render(git, commit, tree)
        if tree not in self._held_found:
            written, built, includes = self._held[tree]
            self._held_found = {tree: self._substitution_sources(written, built, includes)}
        return self._held_found[tree]

    def _held_builds(self, git: Git, commit: str, tree: str) -> list[changes.FluxBuild]:
        """What the Flux Kustomizations the cluster holds once `tree` (rendered: `_render`) is
        applied build, as they are written there (`changes.flux_builds`)."""
        if tree not in self._held:
            self._render(git, commit, tree)
        written, built, _ = self._held[tree]
        if reconcilers.FLUX not in reconcilers.chosen(self.settings.reconciler):
            return []
        found, _ = changes.flux_builds([*written, *built], self.settings.paths, remotes=self._remotes_now)
        return found

    def _flux_build(
        self,
        git: Git,
        commit: str,
        tree: str,
        root: Path,
        documents: Sequence[Document],
        planned: set[str],
        includes: Mapping[str, Sequence[str]],
        before: Sequence[Sequence[variables.SourceObject]] | None = None,
        stale: Sequence[changes.FluxBuild] = (),
    ) -> tuple[list[Document], list[InputProblem], list[list[Document]], list[list[Document]]]:
        """What the Flux Kustomizations of the tree (`changes.flux_builds`) build, as kustomize-controller
        builds it, in the export under `root`; and those that the builds render in turn.

        kustomize-controller builds a Kustomization's `spec.path` whether or not it lies below a
        kustomization the gate renders as a unit (one that does not name it: its files are then read
        by no unit), with the kustomization it finds there or generates (every `.yaml`/`.yml` below it,
        a subdirectory holding a kustomization as one resource), and with what the Kustomization adds
        to it (`targetNamespace`, which puts what it applies in that namespace whatever theirs, name
        affixes, patches, images, `components`). A build that adds nothing to a path already read as
        it is (a unit, or files all read) is not rendered again. Each other build is judged as a
        source of its own (`source_path`: the path), beside the path as it is written: where several
        Kustomizations build one path differently (two `targetNamespace`s), each is judged. The
        export's files are restored after each build.

        A Kustomization that substitutes is built once; where the `substituteFrom` objects the
        cluster holds before the tree is applied (`before`) give other values than the tree's, what
        it builds is substituted with those too (`_flux_build_one`): Flux's first reconcile. A
        Kustomization whose spec the tree changes (or removes) still holds its old spec in the cluster
        until a reconcile applies the new one, and may reconcile the tree with it first (its own
        reconcile applies its new spec): each build of `stale` (the gated tree's) that the tree's
        Kustomizations no longer build is built too, with the values the cluster holds and the tree's.

        Returns:
            The documents (paths under `root`), the problems (a build that fails, a component outside
            `presync.paths`: the gate fails closed), the documents of each build, and the documents
            as Flux's first reconcile applies them where they differ (`before`'s values, `stale`
            builds), one list a source.
        """
        reading = self._reading(git, commit, tree)
        with tempfile.TemporaryDirectory(prefix="trustgate-artifact-") as tmp:
            # What source-controller's artifact holds: no link, no file it ignores. A Flux build
            # reads it, never the export (whose links a kubectl or Argo CD render follows).
            artifact = Path(tmp)
            git.export([e for e in self._ls_tree(git, commit) if _in_artifact(e, reading)], artifact)
            return self._flux_builds(root, artifact, reading, documents, planned, includes, before, stale)

    def _flux_builds(
        self,
        root: Path,
        artifact: Path,
        reading: reconcilers.Views,
        documents: Sequence[Document],
        planned: set[str],
        includes: Mapping[str, Sequence[str]],
        before: Sequence[Sequence[variables.SourceObject]] | None,
        stale: Sequence[changes.FluxBuild] = (),
    ) -> tuple[list[Document], list[InputProblem], list[list[Document]], list[list[Document]]]:
        roots = [repo_path(p) for p in self.settings.paths]
        prefix = str(root) + "/"
        done: set[str] = set()
        out: list[Document] = []
        problems: list[InputProblem] = []
        groups: list[list[Document]] = []
        firsts: list[Document] = []
        seen = list(documents)
        told: set[tuple[str, str]] = set()
        while True:
            builds, refused = self._builds(seen)
            for problem in refused:
                if (problem.source.file, problem.message) not in told:
                    told.add((problem.source.file, problem.message))
                    problems.append(problem)
            new = [b for b in builds if b.identity not in done]
            if not new:
                break
            if len(done) + len(new) > _MAX_INCLUDED:
                problems.append(
                    InputProblem(
                        Source(new[0].file),
                        f"presync/{new[0].reconciler}-build",
                        f"the reconciler sources of the tree build more than {_MAX_INCLUDED:,} paths: what "
                        "the rest apply cannot be judged",
                        "split the repository, or narrow presync.paths",
                    )
                )
                break
            found: list[Document] = []
            # What the builds substitute from, where each lands (paths relative, as Kustomizations name them).
            sources = (
                self._substitution_sources(
                    [_relative_document(d, prefix, copy=True) for d in documents],
                    seen[len(documents) :],
                    includes,
                )
                if any(b.substitutes is not None for b in new)
                else []
            )
            for build in new:
                done.add(build.identity)
                docs, probs, own = self._flux_build_one(
                    build, root, artifact, reading, roots, planned, sources, before, firsts
                )
                problems.extend(probs)
                if docs and own:
                    groups.append(docs)
                found.extend(docs)
            out.extend(found)
            # A Kustomization the builds render applies a path too; compare as paths relative.
            seen = [*documents, *(_relative_document(d, prefix, copy=True) for d in out)]
        old = [b for b in stale if b.reconciler == reconcilers.FLUX and b.identity not in done]
        if not old:
            return out, problems, groups, [firsts]
        # Kustomizations the cluster holds with another spec than the tree's: what each builds of
        # this tree with its old spec, with the values the cluster holds (and the tree's, where they
        # differ), judged where it differs from what the tree's Kustomizations apply.
        sources = self._substitution_sources(
            [_relative_document(d, prefix, copy=True) for d in documents], seen[len(documents) :], includes
        )
        applied = {_canonical(d.obj) for d in [*documents, *out, *firsts]}
        out_firsts = [firsts]
        for build in old:
            mine: set[str] = set()  # what it builds with one of the states the cluster may hold
            told_here: set[tuple[str, str]] = set()
            for held in before or [()]:
                variants: list[Document] = []
                docs, probs, _ = self._flux_build_one(
                    build, root, artifact, reading, roots, planned, held, [sources], variants
                )
                for p in probs:
                    if (p.source.file, p.message) not in told_here:
                        told_here.add((p.source.file, p.message))
                        problems.append(
                            dataclasses.replace(p, message=f"{p.message} (with its spec {_STALE_WHEN})")
                        )
                for group in (docs, variants):
                    new_group = [
                        dataclasses.replace(d, applied_as=build.label, applied_with=_STALE)
                        for d in group
                        if _canonical(d.obj) not in applied and _canonical(d.obj) not in mine
                    ]
                    out_firsts.append(new_group)
                    mine.update(_canonical(d.obj) for d in new_group)
        return out, problems, groups, out_firsts

    def _substitution_sources(
        self, written: Sequence[Document], built: Sequence[Document], includes: Mapping[str, Sequence[str]]
    ) -> list[variables.SourceObject]:
        """The objects the builds may substitute from (`changes.substitution_sources`): `written`,
        as written, and `built`, as the builds so far apply them (paths relative)."""
        substituted = changes.substituted_only(
            [*written, *built], self.settings.paths, remotes=self._remotes_now, includes=includes
        )
        return changes.substitution_sources(
            written,
            built,
            substituted=substituted,
            flux_only=self.settings.reconciler == reconcilers.FLUX,
            remotes=self._remotes_now,
        )

    def _flux_build_one(
        self,
        build: changes.FluxBuild,
        root: Path,
        artifact: Path,
        reading: reconcilers.Views,
        roots: Sequence[str],
        planned: set[str],
        objects: Sequence[variables.SourceObject] = (),
        before: Sequence[Sequence[variables.SourceObject]] | None = None,
        firsts: list[Document] | None = None,
    ) -> tuple[list[Document], list[InputProblem], bool]:
        """What one build (`_flux_build`) applies: (documents, problems, whether they are a build of a
        kustomization, a source of its own; else files an Argo CD directory source reads). A Flux
        build reads `artifact` (what source-controller's artifact holds: a kustomization file that is
        a link or that it ignores is not there, so kustomize-controller generates one), an Argo CD
        one the export under `root` (its repo-server follows links inside the repository).

        A Flux Kustomization with a `spec.postBuild` substitutes what it builds, each object as it
        applies it (`variables.flux_substitution`, with its `substituteFrom` objects found among
        `objects`, the tree's); where what it substitutes cannot be worked out, a problem. Where the
        objects the cluster holds before the tree is applied (`before`, each state it may be in) give
        other values, each object they apply otherwise is added to `firsts` as well, as Flux's first
        reconcile applies it (`_first_reconcile`; once, where two states apply it alike)."""
        flux = build.reconciler == reconcilers.FLUX
        base = artifact if flux else root
        directory = base / build.path if build.path else base
        mirror = root / build.path if build.path else root  # the same directory in the export
        if not directory.is_dir() or directory.is_symlink():
            return [], [], True  # nothing there (the reconciler fails: it applies nothing)
        where = Source(build.file)
        rule = f"presync/{build.reconciler}-build"
        found = [directory / n for n in KUSTOMIZATION_FILES if os.path.lexists(directory / n)]
        odd = next((f for f in found if not f.is_file() or (flux and f.is_symlink())), None)
        if odd is not None:  # a directory, a dangling link: kustomize cannot read it, nor can it be written
            name = odd.relative_to(base).as_posix()
            return (
                [],
                [
                    InputProblem(
                        Source(str(mirror / odd.name)),
                        rule,
                        f"{build.label} ({build.file}) builds {build.path or '.'}, where {name} is not a "
                        "regular file (a directory, or a link to none): what the reconciler builds there "
                        "cannot be worked out",
                        f"remove {name}, or make it a kustomization file",
                    )
                ],
                True,
            )
        kfile = found[0] if found else None
        if kfile is None and not flux:
            return (*self._argocd_directory(build, mirror, root, reading, planned), False)
        generated = None if kfile is not None else _flux_generated(directory, build.path, reading)
        if kfile is not None:
            # Read as it is written only if the unit rendered the same file (kubectl takes a link).
            same = reading.kustomizations.get(build.path) == posixpath.join(build.path, kfile.name)
            read = str(mirror) in planned and same
        else:
            read = all(str(mirror / r) in planned for r in (generated or []))
        if build.plain and read:
            return [], [], True  # read already as it is written
        problems = []
        components = []
        for component in build.components:
            target = posixpath.normpath(posixpath.join(build.path or ".", component))
            outside = target == ".." or target.startswith("../")
            if build.ignore_missing and (outside or not (base / target).exists()):
                continue  # the reconciler leaves a missing one out (ignoreMissingComponents), wherever it is
            if outside:
                problems.append(
                    InputProblem(
                        where,
                        rule,
                        f"{build.label} builds {build.path or '.'} with the component {component}, which "
                        "lies outside the repository: what it adds cannot be judged",
                        "keep the component in the repository, under presync.paths",
                    )
                )
                continue
            if not (base / target).exists() and not _under(target, roots):
                problems.append(
                    InputProblem(
                        where,
                        rule,
                        f"{build.label} builds {build.path or '.'} with the component {component} "
                        f"({target}), which presync.paths does not hold: the gate does not read it, "
                        "so what it adds to every object built there cannot be judged",
                        f"add {target} to presync.paths",
                    )
                )
                continue
            components.append(component)
        if problems:
            return [], problems, True
        written: object = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": generated or [],
        }
        original = kfile.read_bytes() if kfile is not None else None
        if original is not None:
            try:
                written = yaml.load(original, Loader=_YAML_LOADER)
            except yaml.YAMLError:
                written = None
        shown = Source(str(mirror / kfile.name)) if kfile is not None else where
        if not isinstance(written, Mapping):
            problem = InputProblem(
                shown,
                rule,
                f"{build.label} ({build.file}) builds {build.path or '.'}, whose kustomization is not a "
                "mapping: what it builds cannot be worked out",
                "fix the kustomization",
            )
            return [], [problem], True
        clash = changes.case_variant_keys(written)
        if clash:
            problem = InputProblem(
                shown,
                rule,
                f"{build.label} ({build.file}) builds {build.path or '.'}, whose kustomization spells "
                f"{', '.join(clash)} in another case than kustomize's field: kustomize reads keys "
                "regardless of case, so what the reconciler merges into it cannot be worked out",
                "spell the kustomization's fields as kustomize does (patches, images, components, ...)",
            )
            return [], [problem], True
        target_file = kfile or directory / "kustomization.yaml"
        content = dataclasses.replace(build, components=tuple(components)).kustomization(written)
        try:
            with _written(target_file, json.dumps(content, default=str).encode()):
                docs, probs = self._read(loader.Unit(str(directory), "kustomize"), base)
        except OSError as e:
            name = target_file.relative_to(base).as_posix()
            problem = InputProblem(
                Source(str(mirror / target_file.name)),
                rule,
                f"{build.label} ({build.file}) builds {build.path or '.'}: the kustomization it builds "
                f"cannot be written at {name} ({e.strerror or e}): what it builds cannot be worked out",
                f"make {name} a regular file, or remove it",
            )
            return [], [problem], True
        probs = [
            dataclasses.replace(
                p, message=f"{build.label} ({build.file}) builds {build.path or '.'}: {p.message}"
            )
            for p in probs
        ]
        if base is not root:  # name the export's files, as every other document does
            docs = [_moved_document(d, str(base) + "/", str(root) + "/") for d in docs]
            probs = [_moved_problem(p, str(base) + "/", str(root) + "/") for p in probs]
        if flux and build.substitutes is not None:
            substitution, why = variables.flux_substitution(
                build.substitutes, objects, applied_as=build.label, where="presync.paths"
            )
            if why or substitution is None:
                problem = InputProblem(
                    where,
                    rule,
                    reconcilers.printable(
                        f"{build.label} ({build.file}) substitutes variables in what it builds at "
                        f"{build.path or '.'}, but what it substitutes cannot be worked out: {why}"
                    ),
                    "fix the Kustomization's spec.postBuild, or the object it substitutes from",
                )
                return [], [problem], True
            written_docs = docs
            docs = [variables.apply(d, substitution, always=True) for d in docs]
            if before is not None and firsts is not None:
                mine: set[str] = set()
                for held in before:
                    first, failed = _first_reconcile(build, objects, held, substitution, written_docs, docs)
                    if failed is not None:
                        return [], [failed], True
                    firsts.extend(d for d in first if _canonical(d.obj) not in mine)
                    mine.update(_canonical(d.obj) for d in first)
        return docs, probs, True

    def _read(
        self, unit: loader.Unit, root: Path, *, counted: bool = False
    ) -> tuple[list[Document], list[InputProblem]]:
        """`loader.read_unit` of a unit of the export under `root`. A `counted` render (of a
        kustomization no other includes, rendered alone: what an allowed signer can add without
        bound, `_unreached`) is counted against `limits.kustomizeBudgetSeconds` for the run: it
        starts only while some of the budget is left, and each kubectl it runs (the render, its
        origin rendering) is given at most what is left, so the run stops within about the budget.
        Units of the paths and Flux builds are not counted (their number is the repository's own).

        Raises:
            RenderBudgetError: the run's counted renders took the whole budget: the gate fails closed.
        """
        if unit.kind != "kustomize" or not counted:
            return loader.read_unit(unit, self.config.limits, root=str(root))
        budget = self.config.limits.kustomize_budget_seconds
        left = budget - self._rendering
        if left <= 0:
            raise self._over_budget(unit, root)
        limits = dataclasses.replace(
            self.config.limits,
            kustomize_timeout_seconds=min(self.config.limits.kustomize_timeout_seconds, left),
        )
        begun = time.perf_counter()
        out = loader.read_unit(unit, limits, root=str(root))
        self._rendering += time.perf_counter() - begun
        if self._rendering >= budget:
            raise self._over_budget(unit, root)
        return out

    def _over_budget(self, unit: loader.Unit, root: Path) -> RenderBudgetError:
        budget = self.config.limits.kustomize_budget_seconds
        where = unit.path.removeprefix(str(root) + "/") if unit.path != str(root) else "."
        return RenderBudgetError(
            f"kustomize rendered the kustomizations no other includes (each on its own) for "
            f"{self._rendering:.1f} seconds in this run, all of limits.kustomizeBudgetSeconds "
            f"({budget:g} seconds), used up at {where}: what the tree builds cannot all be judged; "
            "nothing moved",
            hint="raise limits.kustomizeBudgetSeconds in trustgate.yaml, narrow presync.paths, or "
            "include the kustomizations from one another",
        )

    def _argocd_directory(
        self,
        build: changes.FluxBuild,
        directory: Path,
        root: Path,
        reading: reconcilers.Views,
        planned: set[str],
    ) -> tuple[list[Document], list[InputProblem]]:
        """The files an Argo CD directory source for `directory` reads that no unit read yet: its
        `.yaml`, `.yml` and `.json` files (below it too with `directory.recurse`; a kustomization file
        is no object, and one holding `+argocd:skip-file-rendering` is left out), each as it is."""
        documents: list[Document] = []
        problems: list[InputProblem] = []
        found = directory.rglob("*") if build.recurse else directory.iterdir()
        for file in sorted(found):
            relative = file.relative_to(root).as_posix()
            if (
                not file.name.endswith(loader.MANIFEST_SUFFIXES)
                or file.name in KUSTOMIZATION_FILES
                or not file.is_file()
                or relative in reading.marked
                or str(file) in planned
            ):
                continue
            planned.add(str(file))
            docs, probs = loader.read_unit(loader.Unit(str(file), "file"), self.config.limits)
            documents.extend(docs)
            problems.extend(probs)
        return documents, problems

    def _builds(self, documents: Sequence[Document]) -> tuple[list[changes.FluxBuild], list[InputProblem]]:
        """What the reconciler sources of `documents` that `presync.reconciler` names build under the
        paths: Flux Kustomizations (`changes.flux_builds`), Argo CD Applications (`argocd_builds`)."""
        chosen = reconcilers.chosen(self.settings.reconciler)
        builds: list[changes.FluxBuild] = []
        problems: list[InputProblem] = []
        for reconciler, find in (
            (reconcilers.FLUX, changes.flux_builds),
            (reconcilers.ARGOCD, changes.argocd_builds),
        ):
            if reconciler in chosen:
                found, refused = find(documents, self.settings.paths, remotes=self._remotes_now)
                builds.extend(found)
                problems.extend(refused)
        return builds, problems

    def _vet_approvals(
        self, git: Git, granted: list[changes.Approval], gated: str | None
    ) -> list[changes.Approval]:
        """The approvals that may count, each with what its commit's tree holds (`Approval.present`)
        and, for one that names no path, what its first parent's tree holds (`Approval.before`).

        An approving commit that does not descend from the gated commit was made before what the
        gate last let through (an abandoned branch merged in): it approves nothing. One whose tree
        cannot be rendered approves nothing either, nor does one naming no path whose first
        parent's tree cannot be (what its own change removes is unknown). On a first run (`gated`
        None) the range is the tip alone: its approvals may count.
        """
        out = []
        seen: dict[str, dict[changes.ObjectKey, changes.Seen] | None] = {}

        def holds(commit: str) -> dict[changes.ObjectKey, changes.Seen] | None:
            if commit not in seen:
                inventory, problems = self._inventory(git, commit, git.tree_of(commit))
                ok = not [p for p in problems if p.rule != "presync/path"]
                seen[commit] = dict(inventory) if ok else None
            return seen[commit]

        after_gated: dict[str, bool] = {}
        for approval in granted:
            if approval.commit not in after_gated:
                after_gated[approval.commit] = gated is None or git.is_ancestor(gated, approval.commit)
            if not after_gated[approval.commit]:
                continue
            present = holds(approval.commit)
            if present is None:
                continue
            before = holds(approval.parent) if not approval.scope and approval.parent else None
            out.append(
                dataclasses.replace(
                    approval,
                    present={key: item.digest for key, item in present.items()},
                    before={key: item.digest for key, item in before.items()} if before is not None else None,
                    present_unapplied=_skipped(present),
                    before_unapplied=_skipped(before) if before is not None else None,
                )
            )
        return out

    def _reading(self, git: Git, commit: str, tree: str) -> reconcilers.Views:
        """What each reconciler applies of `commit`'s files under the paths (`reconcilers.Views`);
        kept per tree."""
        found = self._views.pop(tree, None)
        if found is None:
            settings = self.settings
            chosen = reconcilers.chosen(settings.reconciler)
            entries = self._ls_tree(git, commit)
            found = reconcilers.views(
                reconciler=settings.reconciler,
                recurse=settings.argocd_recurse,
                paths=settings.paths,
                entries=entries,
                ignore_files=self._source_ignores(git, commit) if reconcilers.FLUX in chosen else {},
                marked=_marked(git, entries, settings.paths) if reconcilers.ARGOCD in chosen else (),
            )
        self._views[tree] = found
        while len(self._views) > 64:  # bounded as `_trees`
            self._views.pop(next(iter(self._views)))
        return found

    def _source_ignores(self, git: Git, commit: str) -> dict[str, bytes]:
        """Every `.sourceignore` of the repository at `commit` (path -> content), as source-controller
        reads them from its checkout: a link is followed (a missing target, or a directory, holds no
        pattern).

        Raises:
            GitError: one is a link out of the repository, to another link, or whose target passes
                through a link (a directory link, which source-controller's os.Open follows and a
                lookup in the tree does not), or together they are over `limits.maxFileBytes` (what
                Flux ignores cannot be worked out).
        """
        limit = self.config.limits.max_file_bytes
        found: dict[str, TreeEntry] = {}
        for entry in git.named(commit, reconcilers.SOURCEIGNORE):
            if entry.mode.startswith("100"):
                found[entry.path] = entry
            elif entry.mode == "120000":
                link = git.blob(entry.object).decode("utf-8", "surrogateescape")
                target = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), link))
                outside = link.startswith("/") or target == ".." or target.startswith("../")
                # The directories the kernel passes through on the way (`..` taken after the part
                # before it, as it takes them): a link among them is followed by source-controller's
                # os.Open but not by a lookup in the tree, so the gate refuses it.
                crossed = [] if outside else _crossed(posixpath.dirname(entry.path), link)
                through = bool(crossed) and any(
                    e.mode in ("120000", "160000") for e in _tree_entries(git, commit, crossed)
                )
                at = (
                    None
                    if outside or through
                    else next((t for t in git.ls_tree(commit, [target]) if t.path == target), None)
                )
                if outside or through or (at is not None and at.mode == "120000"):
                    raise GitError(
                        f"{quoted(entry.path)} links to {quoted(link)}: what Flux's source-controller reads "
                        "there, and so "
                        "what it leaves out of the paths, cannot be known",
                        where=commit[:12],
                        hint=f"commit {quoted(entry.path)} as a regular file",
                    )
                if at is not None and at.mode.startswith("100"):
                    found[entry.path] = at
        if sum(e.size for e in found.values()) > limit:
            raise GitError(
                f"the {reconcilers.SOURCEIGNORE} files at {commit[:12]} hold more than {limit:,} bytes",
                hint="shorten them, or raise limits.maxFileBytes",
            )
        content = git.blobs([e.object for e in found.values()])
        return {path: content[e.object] for path, e in found.items()}

    def _inventory(
        self, git: Git, commit: str, tree: str
    ) -> tuple[dict[changes.ObjectKey, changes.Seen], list[InputProblem]]:
        if tree not in self._trees or tree not in self._objects:
            self._render(git, commit, tree)
        found = self._trees.pop(tree)  # the newest: never the one the bound drops
        self._trees[tree] = found
        while len(self._trees) > 64:  # bounded: a long --watch sees many trees
            self._trees.pop(next(iter(self._trees)))
        return found

    def _note(
        self, git: Git, out: Outcome, commit: str, decision: Decision, *, pushed_with_ref: bool
    ) -> None:
        if not self.settings.notes:
            return
        verdict = (
            "pass"
            if decision.exit_code() == ExitCode.PASS
            else "refused"
            if decision.exit_code() == 1
            else "error"
        )
        blocking = [
            f"{f.rule}: {f.message}"
            for r in decision.results
            for f in r.findings
            if f.severity == Severity.ERROR
        ]
        text = json.dumps(
            {
                "trustgate": "presync",
                "verdict": verdict,
                "gatedRef": out.gated_ref,
                "decision": decision.record_id or None,
                "policyRevision": decision.policy_revision,
                "summary": decision.summary.to_json(),
                "blocking": blocking[:50],
            },
            indent=2,
        )
        try:
            git.add_note(commit, text + "\n")
            if is_url(out.repository) and not pushed_with_ref:
                git.run("push", "--quiet", "origin", "refs/notes/trustgate:refs/notes/trustgate")
        except GitError as e:
            out.warnings.append(f"the git note was not written: {e.message}")


def _first_reconcile(
    build: changes.FluxBuild,
    objects: Sequence[variables.SourceObject],
    before: Sequence[variables.SourceObject],
    substitution: variables.Substitution,
    written: Sequence[Document],
    applied: Sequence[Document],
) -> tuple[list[Document], InputProblem | None]:
    """What `build` applies on Flux's first reconcile of the candidate, where it differs from
    `applied` (the documents substituted with the candidate's `objects`): kustomize-controller
    reads its `substituteFrom` objects from the cluster, where they are as the gated tree left
    them (`before`) until a Kustomization applies the new ones, and in what order Flux
    reconciles its Kustomizations is not fixed. An object the candidate adds is not in the
    cluster yet: Flux skips it if it is `optional` (defaults are taken), else fails the build
    (applying nothing). Nothing when the values are the same (nothing is judged twice).

    Returns:
        (the documents that differ, each marked `_BEFORE`; the problem when the substitution
        with those values cannot be worked out: the gate fails closed).
    """
    assert build.substitutes is not None
    absent = _source_keys(objects) - _source_keys(before)
    if variables.fails_without(build.substitutes, absent):
        return [], None  # the first reconcile fails: it applies nothing
    then, why = variables.flux_substitution(
        build.substitutes,
        before,
        applied_as=f"{build.label} {_BEFORE}",
        where="presync.paths at the gated commit",
        absent=absent,
    )
    if why or then is None:
        return [], InputProblem(
            Source(build.file),
            f"presync/{build.reconciler}-build",
            reconcilers.printable(
                f"{build.label} ({build.file}) substitutes variables in what it builds at "
                f"{build.path or '.'}, but what it substitutes {_BEFORE} (on Flux's first reconcile "
                f"of this commit) cannot be worked out: {why}"
            ),
            "fix the object it substitutes from in a commit of its own first, or the Kustomization's "
            "spec.postBuild",
        )
    if dataclasses.replace(then, applied_as=substitution.applied_as) == substitution:
        return [], None
    out: list[Document] = []
    for doc, now in zip(written, applied, strict=True):
        first = variables.apply(doc, then, always=True)
        if first.obj != now.obj or first.unresolved != now.unresolved:
            out.append(dataclasses.replace(first, applied_as=build.label, applied_with=_BEFORE))
    return out, None


def _canonical(obj: Mapping[str, object]) -> str:
    """`obj` as text that tells two objects apart (`_flux_builds`)."""
    return json.dumps(obj, sort_keys=True, default=str)


def _source_keys(objects: Iterable[variables.SourceObject]) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of each object (`variables.flux_substitution`'s `absent`)."""
    out: set[tuple[str, str, str]] = set()
    for source in objects:
        metadata = source.obj.get("metadata")
        kind = source.obj.get("kind")
        if isinstance(metadata, Mapping) and isinstance(kind, str) and isinstance(metadata.get("name"), str):
            namespace = metadata.get("namespace")
            out.add((kind, namespace if isinstance(namespace, str) else "", metadata["name"]))
    return out


def _marked(git: Git, entries: Sequence[TreeEntry], paths: Sequence[str]) -> list[str]:
    """The manifest files under `paths` whose bytes hold Argo CD's skip marker
    (`reconcilers.ARGOCD_SKIP_MARKER`); a link's target is read, as Argo CD follows it."""
    by_path = {e.path: e for e in entries}
    roots = [repo_path(p) for p in paths]
    read: dict[str, TreeEntry] = {}
    for entry in entries:
        if not entry.path.endswith(loader.MANIFEST_SUFFIXES) or not _under(entry.path, roots):
            continue
        if entry.mode == "120000":
            link = git.blob(entry.object).decode("utf-8", "surrogateescape")
            target = by_path.get(posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), link)))
            if target is not None and target.mode.startswith("100"):
                read[entry.path] = target
        elif entry.mode.startswith("100"):
            read[entry.path] = entry
    content = git.blobs(list({e.object for e in read.values()}))
    return [path for path, e in read.items() if reconcilers.ARGOCD_SKIP_MARKER in content[e.object]]


def _raw_units(reading: reconcilers.Views, entries: Sequence[TreeEntry], root: Path) -> list[loader.Unit]:
    """What a reconciler applies of a directory whose kustomization it does not render
    (`Views.unrendered`), as units of the exported tree under `root`. Flux's generated kustomization
    (fluxcd/pkg kustomize_generator.go `generateKustomization`) lists every `.yaml`/`.yml` file of
    its artifact below it, and a subdirectory holding a kustomization it can see as one resource,
    not walked further. Argo CD's recursing directory source reads every `.yaml`, `.yml` and `.json`
    below it (links followed), kustomizations or not; a kustomization file itself it leaves out (no
    object: its decoder fails on it, and a file without apiVersion, kind and metadata is skipped) or
    fails the sync on (an object with no name), so it is not read here."""
    unrendered = reading.unrendered()
    units: dict[str, loader.Unit] = {}
    hidden = unrendered.get(reconcilers.FLUX, {})
    visible = sorted(
        d for d in reading.kustomizations if d not in hidden and reading.flux_kustomization(d) is not None
    )
    for directory in sorted(hidden):
        prefix = directory + "/" if directory else ""
        below = [d for d in visible if d.startswith(prefix) and d != directory]
        for entry in entries:
            path = entry.path
            if not path.startswith(prefix) or not entry.mode.startswith("100"):
                continue
            inner = next((d for d in below if path.startswith(d + "/")), None)
            if inner is not None:
                units.setdefault(inner, loader.Unit(str(root / inner), "kustomize"))
            elif path.endswith(reconcilers.FLUX_SUFFIXES) and reading.flux_reads(path):
                units.setdefault(path, loader.Unit(str(root / path), "file"))
    for directory in sorted(unrendered.get(reconcilers.ARGOCD, {})):
        prefix = directory + "/" if directory else ""
        for entry in entries:
            if (
                entry.path.startswith(prefix)
                and entry.path.endswith(loader.MANIFEST_SUFFIXES)
                and entry.path.rpartition("/")[2] not in KUSTOMIZATION_FILES
                and (entry.mode.startswith("100") or entry.mode == "120000")
            ):
                units.setdefault(entry.path, loader.Unit(str(root / entry.path), "file"))
    return list(units.values())


def _skipped(inventory: Mapping[changes.ObjectKey, changes.Seen]) -> dict[changes.ObjectKey, frozenset[str]]:
    """What of `inventory` some reconciler would not apply: key -> those reconcilers."""
    return {key: frozenset(item.unapplied) for key, item in inventory.items() if item.unapplied}


def _units(files: dict[str, bytes], paths: Sequence[str]) -> list[loader.Unit]:
    """In-memory units for `files`, chosen and ordered as `loader.plan` walks each of `paths`.

    A named file is read whatever its suffix; under a directory, manifest suffixes are
    read, dot names included (`loader.plan(dot_names=True)`: Flux's generated
    kustomization applies them), sorted name by name per level.
    """
    units: dict[str, loader.Unit] = {}
    for raw in paths:
        base = repo_path(raw)
        if base in files:
            units.setdefault(base, loader.Unit(base, "stdin", files[base]))
            continue
        prefix = base + "/" if base else ""
        chosen = []
        for name in files:
            if not name.startswith(prefix):
                continue
            below = name[len(prefix) :].split("/")
            if not name.endswith(loader.MANIFEST_SUFFIXES):
                continue
            chosen.append((below, name))
        for _, name in sorted(chosen):
            units.setdefault(name, loader.Unit(name, "stdin", files[name]))
    return list(units.values())


def _scope_paths(paths: Sequence[str]) -> list[str]:
    """`presync.paths` as one set: `./a/`, `a` and `a/` are one path; `""` and `.` the whole tree."""
    return sorted({repo_path(p) or "." for p in paths})


def _commit_entry(commit: Commit) -> dict[str, object]:
    """One commit of the range as `subject.presync.commits` keeps it."""
    out: dict[str, object] = {
        "sha": commit.sha,
        "author": GitIdentity(commit.author_name, commit.author_email).to_json(),
        "committer": GitIdentity(commit.committer_name, commit.committer_email).to_json(),
    }
    signer = signer_record(commit)
    if signer:
        out["signer"] = signer
    return out


def _commit_result(commit: Commit, findings: list[Finding]) -> DocumentResult:
    return DocumentResult(Source(f"commit {commit.sha[:12]}"), None, "Commit", None, commit.sha, findings)


# How a document judged as Flux's first reconcile of the candidate applies it is named (`_first_reconcile`).
_BEFORE = "with the values the cluster holds before this change"
# One applied by a Kustomization whose spec the change alters, as the cluster holds it (`_flux_builds`).
_STALE_WHEN = "as the cluster holds it before this change, on Flux's first reconcile of this commit"
_STALE = f"with its spec {_STALE_WHEN}"
_MAX_INCLUDED = 1_000  # kustomizations followed out of the paths; more is a loop or an attack
# What Argo CD's directory source reads (argo-cd reposerver `manifestFile`: yaml, yml, json, jsonnet),
# with what a Jsonnet file imports; in any case: more judged is never less.
_READ_SUFFIXES = (".yaml", ".yml", ".json", ".jsonnet", ".libsonnet")


def _reads(git: Git, entries: Sequence[TreeEntry]) -> set[str]:
    """Of `entries` (`_ls_tree`), the files a reconciler reads: manifests by their suffix
    (`_READ_SUFFIXES`, any case; `.argocd-source*.yaml` and kustomization files among them), every
    file a kustomization (or a YAML file it names: a plugin configuration) names by a string of it
    (`path` or `key=path`, beside the kustomization), and every file of a Helm chart (a directory
    holding `Chart.yaml`: templates, values and what `.Files` reads). A file no reconciler reads
    (a script, a picture) is converted by a checkout without changing what is applied.
    """
    regular = {e.path: e for e in entries if e.mode.startswith("100")}
    out = {
        p
        for p in regular
        if p.lower().endswith(_READ_SUFFIXES) or p.rpartition("/")[2] in KUSTOMIZATION_FILES
    }
    charts = [p.rpartition("/")[0] for p in regular if p.rpartition("/")[2] == loader.HELM_CHART_FILE]
    out.update(p for p in regular if any(within(p, c) for c in charts))
    kustomizations = [e for e in regular.values() if e.path.rpartition("/")[2] in KUSTOMIZATION_FILES]
    content = git.blobs([e.object for e in kustomizations])
    scanned: set[tuple[str, str]] = set()
    queue = [(e.path.rpartition("/")[0], e.path) for e in kustomizations]
    while queue:
        directory, path = queue.pop()
        if (directory, path) in scanned:
            continue
        scanned.add((directory, path))
        data = content.get(regular[path].object)
        if data is None:
            data = content[regular[path].object] = git.blobs([regular[path].object])[regular[path].object]
        try:
            strings = list(_strings(list(yaml.safe_load_all(data))))
        except (yaml.YAMLError, ValueError, RecursionError):  # unreadable: all beside it may be read
            out.update(p for p in regular if within(p, directory))
            continue
        for text in strings:
            for name in {text, text.partition("=")[2]}:
                if not name or "\0" in name or posixpath.isabs(name):
                    continue
                target = posixpath.normpath(posixpath.join(directory, name))
                if target in regular:
                    out.add(target)
                    if target.lower().endswith((".yaml", ".yml")):
                        queue.append((directory, target))
    return out


def _strings(value: object) -> Iterator[str]:
    """Every string of a parsed YAML value, keys included."""
    stack = [value]
    seen: set[int] = set()  # an alias names one object many times: walked once
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _included(git: Git, commit: str, entries: list[TreeEntry], paths: Sequence[str]) -> list[TreeEntry]:
    """`entries` (the files under `presync.paths`) and, after them, the files of the repository
    outside them that their kustomizations name, transitively (`../../base`, a patch file, the
    kustomizations those include): what rendering the paths reads, as a reconciler renders a path
    of a whole checkout (Flux, Argo CD).

    Read from the commit like the rest (pinned, no TOCTOU); nothing outside the repository is
    followed (a name leading out of it, or one naming a directory at or above the kustomization,
    which kustomize refuses, is left to `kustomize_refs`, which refuses it). Units are still only
    the paths: the included files are rendered only as the kustomizations under the paths include
    them. Links among them are exported as links, and may not lead out of the export (`Git.export`).
    """
    from trustgate.manifests import kustomize_refs  # here: only kustomizations need it

    have = {e.path for e in entries}
    roots = [repo_path(p) for p in paths]
    found: dict[str, TreeEntry] = {}  # directory -> its kustomization file
    for entry in entries:
        directory, _, name = entry.path.rpartition("/")
        if name in KUSTOMIZATION_FILES and entry.mode.startswith("100"):
            found.setdefault(directory, entry)
    out = list(entries)
    listed: dict[str, list[TreeEntry]] = {}
    walked: set[str] = set()
    level = sorted(found)
    while level and len(walked) < _MAX_INCLUDED:
        level = [d for d in level if d not in walked][: _MAX_INCLUDED - len(walked)]
        walked.update(level)
        content = git.blobs([found[d].object for d in level])
        after: list[str] = []
        for directory in level:
            for value, include in kustomize_refs.local_names(content[found[directory].object]):
                if posixpath.isabs(value):
                    continue
                target = posixpath.normpath(posixpath.join(directory, value))
                if target in (".", "..") or target.startswith("../"):
                    continue  # the whole repository, or outside it: refused when checked
                if within(directory, target):
                    continue  # at or above the kustomization: kustomize refuses it
                if target not in listed:
                    listed[target] = [] if _under(target, roots) else git.ls_tree(commit, [target])
                for entry in listed[target]:
                    if entry.path in have:
                        continue
                    have.add(entry.path)
                    out.append(entry)
                    where, _, name = entry.path.rpartition("/")
                    if name in KUSTOMIZATION_FILES and entry.mode.startswith("100"):
                        found.setdefault(where, entry)
                if include and target in found and target not in walked:
                    after.append(target)
        level = sorted(set(after))
    return out


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _under(path: str, roots: Sequence[str]) -> bool:
    """Whether `path` lies under one of `roots` (`presync.paths`): its files are listed already."""
    return any(within(path, r) for r in roots)


def _argocd_override(path: str) -> bool:
    """Whether `path` is one of the files Argo CD reads from an Application's path and merges into its
    source before rendering ("Store Overrides In Git"): `.argocd-source.yaml`, and
    `.argocd-source-<app>.yaml` (`<namespace>_<app>` with apps in any namespace). Any directory under
    the paths may be an Application's path: which one is, is not known here."""
    name = path.rpartition("/")[2]
    return name == ".argocd-source.yaml" or (name.startswith(".argocd-source-") and name.endswith(".yaml"))


def _unseen_content(git: Git, entries: Sequence[TreeEntry], paths: Sequence[str]) -> list[InputProblem]:
    """Submodules, links leading out of the checked paths, Jsonnet and Argo CD's parameter overrides:
    content a reconciler (Argo CD follows links and submodules, renders `*.jsonnet` in a directory
    source, and merges `.argocd-source*.yaml` into any source) would deploy but trustgate does not
    read. Reported, so the gate fails closed."""
    roots = [repo_path(p) for p in paths]
    # What is exported besides the paths (`_included`: what their kustomizations name) is pinned by
    # the commit too: a link may lead there.
    exported = {e.path for e in entries}
    exported.update(d for e in entries for d in _parents(e.path))

    def inside(name: str) -> bool:
        return _under(name, roots) or name in exported

    out = []
    for entry in entries:
        if _argocd_override(entry.path) and _under(entry.path, roots):
            out.append(
                InputProblem(
                    Source(entry.path),
                    "presync/unread",
                    f"{entry.path} is an Argo CD parameter override: Argo CD merges it into the source of "
                    "the Application whose path holds it before rendering (a name prefix, patches, images), "
                    "so what it applies is not what trustgate renders from the files",
                    "write the change into the manifests or the kustomization itself (Argo CD Image Updater: "
                    "write-back-target kustomization), or leave the directory out of presync.paths",
                )
            )
        elif entry.path.endswith(loader.RENDERED_UNREAD) and _under(entry.path, roots):  # kustomize: none
            out.append(
                InputProblem(
                    Source(entry.path),
                    "presync/unread",
                    f"{entry.path} is Jsonnet: a reconciler (Argo CD's directory source) renders it, but "
                    "trustgate does not read Jsonnet, so what it makes would not be checked",
                    "commit the rendered YAML instead, or leave the file out of presync.paths",
                )
            )
        elif entry.mode == "160000":
            out.append(
                InputProblem(
                    Source(entry.path),
                    "presync/submodule",
                    f"{entry.path} is a submodule; its content is not checked, but a reconciler may "
                    "deploy it",
                    "vendor the manifests into the repository, or leave the submodule out of presync.paths",
                )
            )
        elif entry.mode == "120000":
            target = git.blob(entry.object).decode("utf-8", "replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), target))
            if target.startswith("/") or resolved.startswith("..") or not inside(resolved):
                out.append(
                    InputProblem(
                        Source(entry.path),
                        "presync/link",
                        f"{entry.path} links to {target}, outside {', '.join(paths)}: its content would "
                        "not be checked",
                        "copy the file into the checked paths, or add its directory to presync.paths",
                    )
                )
    return out


def _argocd_charts(entries: Sequence[TreeEntry], paths: Sequence[str]) -> list[InputProblem]:
    """The directories under `paths` that Argo CD renders with Helm and trustgate reads otherwise.

    An Application without a source type set takes its path for a Helm chart when, of the names
    ending in `Chart.yaml` and kustomization names directly in it, the last in byte order is a chart
    name (`values-Chart.yaml` after `kustomization.yaml`), and `helm template` renders it when it holds
    `Chart.yaml`. trustgate renders that directory's kustomization, or (none in it or above it
    under the paths) reads its files one by one, so the chart's templates, which Argo CD applies,
    would not be judged. Any directory under the paths may be an Application's path (as for
    `_argocd_override`); a chart below a kustomization directory is read by neither (a HelmRelease's
    chart: not covered)."""
    roots = [repo_path(p) for p in paths]
    names: dict[str, list[str]] = {}
    for entry in entries:
        directory, _, name = entry.path.rpartition("/")
        if entry.mode != "160000" and _under(directory, roots):  # a submodule is a directory
            names.setdefault(directory, []).append(name)
    kustomized = {d for d, found in names.items() if any(n in KUSTOMIZATION_FILES for n in found)}
    out = []
    for directory, found in sorted(names.items()):
        last = loader.argocd_chart_file(found)
        if last is None:
            continue
        if directory in kustomized:
            kustomization = max((n for n in found if n in KUSTOMIZATION_FILES), key=_go_order)
            read = (
                f"trustgate renders its {kustomization} instead ({last} comes after it, and Argo CD "
                "takes any name ending in Chart.yaml for a chart)"
            )
        else:
            # Below a kustomization directory of the same entry of the paths, trustgate reads nothing.
            base = max((r for r in roots if within(directory, r)), key=len)
            if any(within(directory, a) and within(a, base) for a in kustomized):
                continue
            read = "trustgate reads its files one by one, not as a chart"
        where = f"{directory}/{last}" if directory else last
        out.append(
            InputProblem(
                Source(where),
                "presync/unread",
                f"{directory or '.'} is a Helm chart to Argo CD: an Application whose path it is (with no "
                f"source type set) renders it with `helm template`, but {read}, so what Argo CD applies "
                "would not be checked",
                "commit the chart's rendered output (`helm template`) instead, rename "
                f"{last} if the directory is no chart, or set presync.reconciler: flux if no Argo CD "
                "Application applies these paths",
            )
        )
    return out


def _go_order(name: str) -> bytes:
    """A name's sort key as Go compares strings (bytes); a name git gave that is not UTF-8 keeps its
    bytes (`surrogateescape`)."""
    return name.encode("utf-8", "surrogateescape")


def _in_artifact(entry: TreeEntry, reading: reconcilers.Views) -> bool:
    """Whether source-controller's artifact holds `entry`: no link, no file it ignores."""
    if entry.mode == "120000":
        return False
    return not entry.mode.startswith("100") or reading.ignore.excludes(entry.path) is None


@contextlib.contextmanager
def _written(path: Path, data: bytes) -> Iterator[None]:
    """`path` holding `data` for the time of the block, then exactly as it was: absent, a regular
    file with its bytes, or a link to its target (replaced, never written through).

    Raises:
        OSError: `path` is neither absent, a regular file nor a link (a directory), or cannot be
            written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    link = os.readlink(path) if path.is_symlink() else None
    original = None
    if link is None and os.path.lexists(path):
        if not path.is_file():
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        original = path.read_bytes()
    if link is not None:
        path.unlink()
    try:
        fd = os.open(path, flags | (os.O_EXCL if original is None else 0), 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield
    finally:
        if original is not None:
            fd = os.open(path, flags, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(original)
        else:
            path.unlink(missing_ok=True)
            if link is not None:
                os.symlink(link, path)


def _moved_document(doc: Document, old: str, new: str) -> Document:
    source = doc.source
    rendered = source.rendered_from
    moved = dataclasses.replace(
        source,
        file=new + source.file.removeprefix(old) if source.file.startswith(old) else source.file,
        rendered_from=new + rendered.removeprefix(old) if rendered and rendered.startswith(old) else rendered,
    )
    return dataclasses.replace(doc, source=moved)


def _moved_problem(problem: InputProblem, old: str, new: str) -> InputProblem:
    source = problem.source
    file = new + source.file.removeprefix(old) if source.file.startswith(old) else source.file
    return dataclasses.replace(
        problem,
        source=dataclasses.replace(source, file=file),
        message=problem.message.replace(old, new),
        hint=problem.hint.replace(old, new),
    )


def _flux_generated(directory: Path, path: str, reading: reconcilers.Views) -> list[str]:
    """The resources of the kustomization kustomize-controller generates for `directory` (the
    repository path `path`), which has none (fluxcd/pkg kustomize_generator.go
    `generateKustomization`): walked in lexical order, a subdirectory holding a kustomization is
    one resource (not walked further), and every `.yaml`/`.yml` file of source-controller's
    artifact (no link, nothing it ignores) is one."""
    out: list[str] = []

    def walk(here: Path, relative: str) -> None:
        for entry in sorted(here.iterdir(), key=lambda e: e.name):
            below = f"{relative}/{entry.name}" if relative else entry.name
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if any((entry / n).is_file() for n in KUSTOMIZATION_FILES):
                    out.append("./" + below)
                else:
                    walk(entry, below)
            elif entry.name.endswith(reconcilers.FLUX_SUFFIXES) and reading.flux_reads(
                posixpath.join(path, below) if path else below
            ):
                out.append("./" + below)

    walk(directory, "")
    return out


def _crossed(directory: str, link: str) -> list[str]:
    """The directories of the repository a path `link` (relative to `directory`) passes through, in
    the order the kernel passes them: every prefix of `directory`, then of the link's own parts but
    its last. A `..` steps back from the part before it (after that part, were it a link, was
    followed): the prefixes are each checked, so a link among them is found whatever follows it."""
    parts = [p for p in directory.split("/") if p] if directory else []
    out = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    stack = list(parts)
    pieces = [p for p in link.split("/") if p and p != "."]
    for piece in pieces[:-1]:
        if piece == "..":
            if stack:
                stack.pop()
            continue
        stack.append(piece)
        out.append("/".join(stack))
    return list(dict.fromkeys(out))


def _tree_entries(git: Git, commit: str, paths: Sequence[str]) -> list[TreeEntry]:
    """The entries `paths` name at `commit` themselves (a directory as one entry, not its files)."""
    out = git.run("ls-tree", "-z", "--full-tree", commit, "--", *(f":(top,literal){p}" for p in paths)).stdout
    wanted = set(paths)
    found = []
    for raw in out.split(b"\0"):
        meta, _, name = raw.partition(b"\t")
        fields = meta.split()
        path = name.decode("utf-8", "surrogateescape")
        if len(fields) >= 3 and path in wanted:
            found.append(TreeEntry(path, 0, mode=fields[0].decode(), object=fields[2].decode()))
    return found


def _unreached(
    reading: reconcilers.Views, units: Sequence[loader.Unit], root: Path
) -> tuple[list[loader.Unit], dict[str, set[str]]]:
    """The kustomizations under the paths that none of `units` renders, itself or through what its
    kustomizations include (`kustomize_refs.local_names`), as units of the export under `root`; and,
    for each, the others of them that include it (directly or through what they include).

    A reconciler renders a kustomization wherever a Flux Kustomization's path or an Argo CD
    Application's path names it, and one the gate does not see (in the cluster, another repository)
    may name any: so each is judged alone, as the path of a reconciler source of its own, even when
    another of them includes it (which may delete or patch what it holds), a `kind: Component`
    included (kustomize builds one alone). One a reconciler reads the raw files of instead
    (`Views.unrendered`) is `_raw_units`'. Where one fails to render alone but another that includes
    it renders, no reconciler could apply it alone either: the runner notes it (`_render`)."""
    from trustgate.manifests import kustomize_refs  # here: only kustomizations need it

    prefix = str(root) + "/"
    hidden = set(reading.unrendered().get(reconcilers.FLUX, {}))
    includes: dict[str, list[str]] = {}

    def file_of(directory: str) -> Path | None:
        return next(
            (root / directory / n for n in KUSTOMIZATION_FILES if (root / directory / n).is_file()), None
        )

    def included(directory: str) -> list[str]:
        if directory not in includes:
            file = file_of(directory)
            found = []
            # only what kustomize keeps of a field written in several cases: a spelling it drops
            # (`Resources:` beside `resources:`) includes nothing, so it reaches and excuses nothing
            for value, include in kustomize_refs.local_names(file.read_bytes(), kept=True) if file else ():
                target = posixpath.normpath(posixpath.join(directory or ".", value))
                if include and not posixpath.isabs(value) and target != ".." and not target.startswith("../"):
                    found.append("" if target == "." else target)
            includes[directory] = found
        return includes[directory]

    def reach(starts: Sequence[str], into: set[str]) -> set[str]:
        """`into` grown by the directories `starts` render, themselves and what they include."""
        stack = list(starts)
        while stack and len(into) < _MAX_INCLUDED:
            directory = stack.pop()
            if directory not in into:
                into.add(directory)
                stack.extend(included(directory))
        return into

    reached = reach(
        ["" if u.path == str(root) else u.path.removeprefix(prefix) for u in units if u.kind == "kustomize"],
        set(),
    )
    pending = [
        directory
        for directory, file in sorted(reading.kustomizations.items())
        if directory not in reached
        and directory not in hidden
        and reading.base(directory) is not None
        and (file not in reading.links or reading.flux_kustomization(directory) is not None)
    ]

    def path(directory: str) -> str:
        return str(root / directory) if directory else str(root)

    by: dict[str, set[str]] = {}
    for directory in pending:
        for below in reach(included(directory), set()) - {directory}:
            by.setdefault(path(below), set()).add(path(directory))
    # A `kind: Component` too: kustomize (and so Flux and Argo CD) builds one alone where it
    # holds resources; one that fails alone is excused only through a kustomization including it.
    return [loader.Unit(path(d), "kustomize") for d in pending], by


def _includes(reading: reconcilers.Views, root: Path) -> dict[str, list[str]]:
    """Each kustomization of the export under `root` (its directory, relative) -> the repository
    paths it names (`kustomize_refs.local_names`, as kustomize keeps them: directories and files),
    for what a Flux Kustomization applies through an overlay (`changes.substituted_only`)."""
    from trustgate.manifests import kustomize_refs  # here: only kustomizations need it

    out: dict[str, list[str]] = {}
    for directory, file in reading.kustomizations.items():
        if file in reading.links:  # not in Flux's artifact: kustomize-controller generates one there
            continue
        try:
            data = (root / file).read_bytes()
        except OSError:  # not exported (a link): names nothing here
            continue
        found = []
        for value, _ in kustomize_refs.local_names(data, kept=True):
            target = posixpath.normpath(posixpath.join(directory or ".", value))
            if not posixpath.isabs(value) and target != ".." and not target.startswith("../"):
                found.append("" if target == "." else target)
        out[directory] = found
    return out


def _relative_document(doc: Document, prefix: str, *, copy: bool = False) -> Document:
    if copy:
        return dataclasses.replace(doc, source=_relative(doc.source, prefix))
    doc.source = _relative(doc.source, prefix)
    return doc


def _relative_problem(problem: InputProblem, prefix: str) -> InputProblem:
    return dataclasses.replace(
        problem,
        source=_relative(problem.source, prefix),
        message=problem.message.replace(prefix, ""),
        hint=problem.hint.replace(prefix, ""),
    )


def _relative(source: Source, prefix: str) -> Source:
    rendered = source.rendered_from
    return dataclasses.replace(
        source,
        file=source.file.removeprefix(prefix) or ".",
        rendered_from=(rendered.removeprefix(prefix) or ".") if rendered else None,
    )


def _where(repository: str) -> str:
    """The repository as a scope names it: a URL without credentials, or a local path made absolute."""
    return _clean(repository) if is_url(repository) else str(Path(repository).resolve())


def _identity_config(committer: tuple[str, str]) -> dict[str, str]:
    return {"user.name": committer[0], "user.email": committer[1]}


def _clean(repository: str) -> str:
    from trustgate.presync.git import strip_credentials

    return strip_credentials(repository)


def _done(out: Outcome, started: float) -> Outcome:
    out.duration_ms = (time.perf_counter() - started) * 1000
    return out
