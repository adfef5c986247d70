"""`trustgate presync` and a gated ref that someone other than the gate moved.

The gate must not judge onward from a commit it did not leave the gated ref at: the commits
pushed past it would never be judged, and the reconciler deploys them. Where the gate left the
ref is read from the decision log (which `log prune` carries over), and, without one, from what
a `--watch` process did itself.

Real git repositories, commits signed by test SSH and GPG keys, through the CLI (the helpers of
`test_cli_presync.py`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import test_cli_presync
from click.testing import CliRunner
from support.gitrepo import bare_remote, push_to, ref_in
from test_cli_presync import CONFIGMAP, GATED, PRIVILEGED_POD, Keys, Setup
from test_cli_presync_builds import FLUX, LEGACY_WAIVED, _kustomization
from test_cli_presync_substitution import PATHS, TENANT_AGENT
from test_cli_presync_substitution_before import BEFORE, FROM_VARS, _vars

from trustgate.cli.main import main

# Its fixtures, by the names the tests ask for.
keys = test_cli_presync.keys
setup = test_cli_presync.setup

MOVED = "presync/gated-ref-moved"


def _cm(value: str) -> str:
    return CONFIGMAP.replace("'1'", f"'{value}'")


def _move_gated(s: Setup, commit: str, remote: str | None = None) -> None:
    """Someone who may push the gated ref moves it, past the gate."""
    if remote:
        push_to(s.repo, remote, f"{commit}:{GATED}", force=True)
    else:
        s.repo.git("update-ref", GATED, commit)


def _gated(s: Setup, remote: str | None) -> str | None:
    return ref_in(s.tmp / "remote.git", GATED) if remote else s.repo.ref(GATED)


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_gated_ref_moved_to_an_unsigned_commit_is_flagged_and_not_judged_onward_from(
    setup: Callable[..., Setup], keys: Keys, where: str
) -> None:
    s = setup()
    remote = bare_remote(s.tmp / "remote.git", s.repo, "main") if where == "remote" else None
    cache = ("--cache-dir", str(s.tmp / "cache")) if remote else ()
    assert s.run(*cache, repo=remote)[0] == 0
    left = s.repo.head()
    moved_by = s.records()[-1]["id"]

    # Pushed past the gate, onto main and the gated ref: the tip is the gated commit ("already" before).
    s.repo.write("deploy/debug.yaml", PRIVILEGED_POD)
    sneaked = s.repo.commit("sneak in")
    if remote:
        push_to(s.repo, remote, "main")
    _move_gated(s, sneaked, remote)
    code, output = s.run(*cache, repo=remote)
    assert code == 3, output
    assert MOVED in output and "someone else moved it" in output
    assert f"is at {sneaked[:12]}, but this gate left it at {left[:12]} (decision {moved_by})" in output
    assert f"1 commit pushed past the gate: {sneaked[:12]} 'sneak in' (commit-unsigned)" in output
    assert f"--accept-gated-commit {sneaked}" in output and f"update-ref {GATED} {left} {sneaked}" in output
    record = s.records()[-1]
    assert record["verdict"] == "error" and [f["rule"] for f in record["findings"]] == [MOVED]
    presync = record["subject"]["presync"]
    assert presync["gatedFound"] == sneaked and presync["vouched"] == [left]
    assert presync["expectedBy"] == moved_by and [c["sha"] for c in presync["commits"]] == [sneaked]

    # A signed commit on top is not judged onward from the moved ref either (it passed before).
    s.repo.remove("deploy/debug.yaml")
    tip = s.repo.commit("signed on top", ssh=keys.alice)
    if remote:
        push_to(s.repo, remote, "main")
    code, output = s.run(*cache, repo=remote)
    assert code == 3, output
    assert f"this gate left it at {left[:12]} (decision {moved_by})" in output  # the stop carries it on
    assert _gated(s, remote) == sneaked

    # Put back where the gate left it: the commit pushed past the gate is judged with the rest.
    if remote:
        subprocess.run(
            ["git", "-C", str(s.tmp / "remote.git"), "update-ref", GATED, left, sneaked], check=True
        )
    else:
        s.repo.git("update-ref", GATED, left, sneaked)
    code, output = s.run(*cache, repo=remote)
    assert code == 1, output
    assert "commit-unsigned" in output and sneaked[:12] in output
    assert _gated(s, remote) == left != tip


def test_a_gated_ref_moved_to_a_passing_commit_is_flagged_unless_accepted(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    assert s.run()[0] == 0
    left = s.repo.head()
    s.repo.write("deploy/settings.yaml", _cm("2"))
    bypassed = s.repo.commit("signed, but pushed past the gate", ssh=keys.alice)
    _move_gated(s, bypassed)
    code, output = s.run()
    assert code == 3, output
    assert MOVED in output and f"1 commit pushed past the gate: {bypassed[:12]} " in output
    records = len(s.records())

    # The way out names the commit in full, for one run; anything else judges and records nothing.
    for args, said in (
        (("--accept-gated-commit", bypassed[:12]), "is not a full commit id"),
        (("--accept-gated-commit", left), f"{GATED} is at {bypassed}, so there is nothing to accept"),
        (("--accept-gated-commit", bypassed, "--watch"), "--accept-gated-commit is for one run"),
    ):
        code, output = s.run(*args)
        assert code == 2 and said in output, output
    assert len(s.records()) == records and s.repo.ref(GATED) == bypassed

    s.repo.write("deploy/settings.yaml", _cm("3"))
    tip = s.repo.commit("tune", ssh=keys.alice)
    code, output = s.run("--accept-gated-commit", bypassed.upper())
    assert code == 0, output
    assert f"advanced to {tip[:12]} (from {bypassed[:12]})" in output
    assert "was accepted by " in output and f"although this gate left it at {left[:12]}" in output
    presync = s.records()[-1]["subject"]["presync"]
    accepted = presync["acceptedGatedCommit"]
    assert accepted["commit"] == bypassed and accepted["expected"] == [left] and accepted["by"]
    assert presync["gatedBefore"] == bypassed
    assert [c["sha"] for c in presync["commits"]] == [tip]  # judged onward from the accepted commit
    assert s.repo.ref(GATED) == tip

    code, output = s.run()  # where the gate left it now
    assert code == 0 and "already" in output, output


def test_an_accepted_gated_commit_at_the_tip_is_recorded(setup: Callable[..., Setup], keys: Keys) -> None:
    """Nothing to judge when the tip is the accepted commit, but the acceptance must hold for the
    next run (`--watch` cannot take the flag)."""
    s = setup()
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", _cm("2"))
    bypassed = s.repo.commit("hotfix pushed past the gate", ssh=keys.alice)
    _move_gated(s, bypassed)
    assert s.run()[0] == 3
    code, output = s.run("--accept-gated-commit", bypassed)
    assert code == 0 and "(accepted: recorded)" in output, output
    presync = s.records()[-1]["subject"]["presync"]
    assert presync["vouched"] == [bypassed] and presync["acceptedGatedCommit"]["commit"] == bypassed
    code, output = s.run()
    assert code == 0 and "already" in output, output


def test_log_prune_keeps_where_the_gate_left_the_gated_ref(setup: Callable[..., Setup], keys: Keys) -> None:
    s = setup()
    store = f"sqlite:///{s.log}"

    def prune() -> str:
        result = CliRunner().invoke(
            main, ["log", "prune", "--store", store, "--before", "2999-01-01"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    assert s.run()[0] == 0
    first = s.repo.head()
    output = prune()
    assert f"carried over where presync left {GATED} of {s.repo.path} at {first[:12]}" in output
    assert "removed 1 decisions" in output
    (carried,) = s.records()
    assert carried["gate"] == "presync" and carried["subject"]["presync"]["vouched"] == [first]
    assert "commit" not in carried["subject"]  # no query by commit, no rollback finds it

    # A normal run after the prune is not stopped: the gate knows where it left the ref.
    s.repo.write("deploy/settings.yaml", _cm("2"))
    tip = s.repo.commit("tune", ssh=keys.alice)
    code, output = s.run()
    assert code == 0 and f"advanced to {tip[:12]}" in output, output
    assert "no record of where it left" not in output

    prune()
    sneaked = s.repo.commit("unsigned")
    _move_gated(s, sneaked)
    code, output = s.run()
    assert code == 3 and MOVED in output and f"this gate left it at {tip[:12]}" in output, output

    # Nor is a deleted gated ref a first run after a prune.
    s.repo.git("update-ref", "-d", GATED)
    prune()
    code, output = s.run()
    assert code == 3 and "presync/gated-ref-missing" in output, output


def test_log_prune_keeps_a_gated_ref_the_gate_never_created_flagged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A refused first run vouches for no commit: a gated ref made by hand afterwards is flagged,
    after a prune too (a refused tip is recorded once by `--watch`, so a retention prune removes
    it while the gate still refuses). A prune must not make it a ref the gate never heard of."""
    s = setup()
    s.repo.write("deploy/settings.yaml", _cm("2"))
    unsigned = s.repo.commit("unsigned tip")
    assert s.run()[0] == 1
    output = _prune(s)
    assert f"carried over where presync left {GATED} of {s.repo.path} nowhere (it never created it)" in output

    # Still missing: still a first run (refused again), not a deleted gated ref.
    code, output = s.run()
    assert code == 1 and "commit-unsigned" in output, output
    _prune(s)
    s.repo.git("update-ref", GATED, unsigned)  # made by hand at the commit the gate refused
    code, output = s.run()
    assert code == 3 and MOVED in output, output
    assert "this gate left it at nowhere (it never created it)" in output


def _prune(s: Setup) -> str:
    result = CliRunner().invoke(
        main,
        ["log", "prune", "--store", f"sqlite:///{s.log}", "--before", "2999-01-01"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_a_gated_ref_the_gate_has_no_record_of_is_taken_as_found(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A gated ref made before the gate ran (adopting trustgate): its commits are history, as a first
    run's are; only what follows is judged, and the output says so. From then on, moves count."""
    s = setup()
    made = s.repo.head()
    s.repo.git("update-ref", GATED, made)
    s.repo.write("deploy/settings.yaml", _cm("2"))
    tip = s.repo.commit("tune", ssh=keys.alice)
    code, output = s.run()
    assert code == 0, output
    assert f"this gate has no record of where it left {GATED}" in output
    assert f"{made[:12]} is taken as found, and only the commits after it are judged" in output
    assert s.repo.ref(GATED) == tip
    s.repo.write("deploy/settings.yaml", _cm("3"))
    tip = s.repo.commit("tune again", ssh=keys.alice)
    code, output = s.run()
    assert code == 0 and "no record of where it left" not in output, output

    s.repo.git("update-ref", GATED, made)  # back, by hand: the gate left it at `tip`
    code, output = s.run()
    assert code == 3 and MOVED in output and f"does not descend from {tip[:12]}" in output, output


def test_a_gated_ref_taken_as_found_at_the_tip_is_recorded(setup: Callable[..., Setup], keys: Keys) -> None:
    """Adopting trustgate on a gated ref already at the tip: nothing to judge, but the gate must
    record where it found it, or a move by someone else before the next commit is taken as found
    again (a CronJob's every run is a first one), and the commits moved onto are never judged."""
    s = setup()
    made = s.repo.head()
    s.repo.git("update-ref", GATED, made)
    code, output = s.run()
    assert code == 0 and "already" in output and "(taken as found: recorded)" in output, output
    (record,) = s.records()
    assert record["subject"]["presync"]["vouched"] == [made] and record["subject"]["presync"]["adopted"]
    assert f"{made[:12]} is taken as found" in " ".join(record["notes"])
    code, output = s.run()  # known now: nothing new recorded
    assert code == 0 and "already" in output and "taken as found" not in output, output
    assert len(s.records()) == 1

    s.repo.write("deploy/settings.yaml", _cm("2"))
    sneaked = s.repo.commit("unsigned, pushed past the gate")
    _move_gated(s, sneaked)
    code, output = s.run()
    assert code == 3 and MOVED in output and f"this gate left it at {made[:12]}" in output, output
    s.repo.write("deploy/settings.yaml", _cm("3"))
    s.repo.commit("signed on top", ssh=keys.alice)
    code, output = s.run()
    assert code == 3 and MOVED in output, output
    assert s.repo.ref(GATED) == sneaked


def test_a_gated_ref_made_after_a_refused_first_run_is_flagged(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    s = setup()
    s.repo.write("deploy/settings.yaml", _cm("2"))
    unsigned = s.repo.commit("unsigned tip")
    assert s.run()[0] == 1
    s.repo.git("update-ref", GATED, unsigned)  # made by hand at the commit the gate refused
    code, output = s.run()
    assert code == 3, output
    assert "this gate left it at nowhere (it never created it)" in output
    assert f"delete {GATED} (the gate never created it)" in output


def test_without_a_decision_log_only_a_watching_process_notices(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    from trustgate.config import load_config
    from trustgate.gate import Gate
    from trustgate.presync.runner import PresyncGate

    s = setup()
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(s.repo.path), "-c", str(s.config), "--no-color"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "moved by someone else" not in result.output  # a first run: nothing to tell
    s.repo.write("deploy/settings.yaml", _cm("2"))
    s.repo.commit("signed", ssh=keys.alice)
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(s.repo.path), "-c", str(s.config), "--no-color"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"no decision log is set: a {GATED} moved by someone else is not detected" in result.output

    config = load_config(s.config)
    with Gate(config=config, decision_log=None) as gate, PresyncGate(gate=gate, config=config) as runner:
        assert runner.run(str(s.repo.path), "main", GATED).action == "already"
        sneaked = s.repo.commit("unsigned")
        _move_gated(s, sneaked)
        outcome = runner.run(str(s.repo.path), "main", GATED)
        assert outcome.exit_code == 3 and "someone else moved it" in outcome.message, outcome.message
        assert "(this process)" in outcome.message


def test_a_watching_process_does_not_pass_a_ref_put_back_past_another_gates_moves(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A `--watch` process and one-shot runs on one decision log: where the watcher left the ref
    itself is stale once the log records a later move. The ref put back there (two moves back) was
    flagged by the one-shot run; the watcher must not pass it, nor judge onward from it."""
    from trustgate.cli.log import gate_decision_log
    from trustgate.config import load_config
    from trustgate.gate import Gate
    from trustgate.presync.runner import PresyncGate

    s = setup()
    config = load_config(s.config)
    log = gate_decision_log(config, f"sqlite:///{s.log}")
    with Gate(config=config, decision_log=log) as gate, PresyncGate(gate=gate, config=config) as watcher:
        assert watcher.run(str(s.repo.path), "main", GATED, watch=True).action == "created"
        left = s.repo.ref(GATED)
        for value in ("2", "3"):  # two moves by a one-shot run of the same gate
            s.repo.write("deploy/settings.yaml", _cm(value))
            s.repo.commit(f"tune {value}", ssh=keys.alice)
            assert s.run()[0] == 0
        tip = s.repo.head()
        s.repo.git("update-ref", GATED, left, tip)  # put back, past the gate: two moves undone
        code, output = s.run()
        assert code == 3 and MOVED in output, output

        outcome = watcher.run(str(s.repo.path), "main", GATED, watch=True)
        assert outcome.exit_code == 3, outcome.message
        assert "someone else moved it" in outcome.message and f"left it at {tip[:12]}" in outcome.message
        assert s.repo.ref(GATED) == left

        # Put back where the gate left it: the watcher judges onward again.
        s.repo.git("update-ref", GATED, tip, left)
        s.repo.write("deploy/settings.yaml", _cm("4"))
        s.repo.commit("tune 4", ssh=keys.alice)
        assert watcher.run(str(s.repo.path), "main", GATED, watch=True).action == "advanced"
        assert watcher.run(str(s.repo.path), "main", GATED, watch=True).action == "already"


def test_a_ref_put_back_one_move_and_a_branch_rewritten_from_there_is_judged_from_the_gates_move(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """The gate moved the ref A -> B (B adds a PVC). Put back at A, where the gate found it (that
    move may have failed, so A is vouched for), and `main` rewritten from A without the PVC: judged
    from A, the rewrite was a fast-forward deleting nothing, and the PVC the cluster holds since B
    was deleted unjudged. The change is judged from B, where the gate's newest record moved it."""
    s = setup()
    assert s.run()[0] == 0
    found = s.repo.head()
    s.repo.write("deploy/cache.yaml", test_cli_presync.PVC.replace("name: data", "name: cache"))
    moved_to = s.repo.commit("a cache volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 0 and s.repo.ref(GATED) == moved_to, output

    _move_gated(s, found)  # one step back, where the gate's newest record found it
    s.repo.git("reset", "--hard", found)
    s.repo.write("deploy/settings.yaml", _cm("2"))
    rewritten = s.repo.commit("signed, rewritten from before the volume", ssh=keys.alice)
    code, output = s.run()
    assert code == 1, output
    assert "non-fast-forward" in output
    assert f"does not descend from {moved_to[:12]}, to which this gate's newest decision moved" in output
    assert s.repo.ref(GATED) == found != rewritten
    assert s.records()[-1]["subject"]["presync"]["judgedFrom"] == moved_to

    # The refusal carries it on: judged from B again, not from A (where that refusal found it).
    code, output = s.run()
    assert code == 1 and "non-fast-forward" in output, output
    # So does a stop on a ref moved elsewhere and then put back at A, and a prune's carry-over.
    _move_gated(s, rewritten)
    assert s.run()[0] == 3
    _move_gated(s, found)
    code, output = s.run()
    assert code == 1 and "non-fast-forward" in output, output
    _prune(s)
    carried = s.records()[-1]["subject"]["presync"]
    assert "carriedOver" in carried and carried["judgedFrom"] == moved_to
    code, output = s.run()
    assert code == 1 and "non-fast-forward" in output, output


def test_a_ref_put_back_one_move_to_a_commit_the_repository_lost_stops_until_accepted(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """As above, with the commit the gate moved the ref to gone from the repository (the branch
    rewritten and the old history pruned): what the change removes of it cannot be judged, so the
    run stops (exit 3) until the operator accepts the commit found (recorded)."""
    s = setup()
    assert s.run()[0] == 0
    found = s.repo.head()
    s.repo.write("deploy/cache.yaml", test_cli_presync.PVC.replace("name: data", "name: cache"))
    moved_to = s.repo.commit("a cache volume", ssh=keys.alice)
    assert s.run()[0] == 0
    _move_gated(s, found)
    s.repo.git("reset", "--hard", found)
    s.repo.git("reflog", "expire", "--expire=now", "--all")
    s.repo.git("gc", "--prune=now", "--quiet")
    with pytest.raises(AssertionError):  # gone
        s.repo.git("cat-file", "-t", moved_to)
    s.repo.write("deploy/settings.yaml", _cm("2"))
    s.repo.commit("signed, rewritten from before the volume", ssh=keys.alice)

    code, output = s.run()
    assert code == 3, output
    assert (
        MOVED in output and f"moved it on to {moved_to[:12]}, which the repository no longer holds" in output
    )
    assert f"--accept-gated-commit {found}" in output and s.repo.ref(GATED) == found

    code, output = s.run("--accept-gated-commit", found)
    assert code == 0, output
    accepted = s.records()[-1]["subject"]["presync"]["acceptedGatedCommit"]
    assert accepted["commit"] == found and accepted["movedOnTo"] == moved_to


@pytest.mark.parametrize("rollback", [False, True])
def test_a_ref_put_back_one_move_with_the_branch_reset_there_too_is_judged_from_the_gates_move(
    setup: Callable[..., Setup], keys: Keys, rollback: bool
) -> None:
    """The gate moved the ref A -> B (B adds a PVC). Put back at A, and `main` reset to A as well: the
    tip is where the ref is, which said "already" (exit 0, nothing recorded) while the reconciler
    applies A and deletes the PVC. The step back is the change, judged from B: refused (a force-push
    deleting the PVC), the way out named; a rollback where `commits.allowRollback` lets A's files
    back, recorded."""
    s = setup(commits="allowRollback: true\n") if rollback else setup()
    assert s.run()[0] == 0
    found = s.repo.head()
    s.repo.write("deploy/cache.yaml", test_cli_presync.PVC.replace("name: data", "name: cache"))
    moved_to = s.repo.commit("a cache volume", ssh=keys.alice)
    assert s.run()[0] == 0 and s.repo.ref(GATED) == moved_to
    _move_gated(s, found)
    s.repo.git("reset", "--hard", found)
    records = len(s.records())

    code, output = s.run()
    assert len(s.records()) == records + 1 and s.repo.ref(GATED) == found
    presync = s.records()[-1]["subject"]["presync"]
    assert presync["gatedBefore"] == found and presync["judgedFrom"] == moved_to
    if rollback:
        assert code == 0 and f"rolled back to {found[:12]}" in output, output
        assert "rollbackOf" in presync
        code, output = s.run()  # where the gate left it now: nothing left to judge
        assert code == 0 and "already" in output, output
        return
    assert code == 1, output
    assert "non-fast-forward" in output and "PersistentVolumeClaim/shop/cache would be deleted" in output
    assert f"--accept-gated-commit {found}" in output
    code, output = s.run()  # the refusal carries it on
    assert code == 1 and "non-fast-forward" in output, output

    # Where that move failed (the cluster never held B), the operator's way out.
    code, output = s.run("--accept-gated-commit", found)
    assert code == 0 and "(accepted: recorded)" in output, output
    assert s.records()[-1]["subject"]["presync"]["acceptedGatedCommit"]["movedOnTo"] == moved_to
    code, output = s.run()
    assert code == 0 and "already" in output, output


def test_a_ref_put_back_one_move_is_judged_with_the_values_the_cluster_holds_at_either_commit(
    setup: Callable[..., Setup], keys: Keys
) -> None:
    """A: `vars` says `tenant: kube-system`; B: `tenant: legacy` (where an exception lets the agent run
    privileged). The gate moved the ref A -> B; the move failed (or the ref was put back at A and
    applied): the cluster holds A's `vars`. C, on B, adds the privileged agent at `${tenant}`. Judged
    from B alone, Flux's first reconcile substituted B's values (legacy, waived) and C passed; it
    applies the agent in kube-system with A's. The first reconcile is judged with both."""
    s = setup(FLUX + LEGACY_WAIVED)
    config = s.config_with("vars.yaml", paths=PATHS)
    s.repo.write("clusters/prod/vars.yaml", _vars("kube-system"))
    s.repo.write("clusters/prod/team.yaml", _kustomization("team", "./tenants/base", FROM_VARS))
    s.repo.write("tenants/base/README.md", "the tenants' objects\n")
    s.repo.commit("cluster values", ssh=keys.alice)
    assert s.run(config=config)[0] == 0
    found = s.repo.head()
    s.repo.write("clusters/prod/vars.yaml", _vars("legacy"))
    moved_to = s.repo.commit("legacy values", ssh=keys.alice)
    assert s.run(config=config)[0] == 0 and s.repo.ref(GATED) == moved_to
    _move_gated(s, found)  # as a failed move leaves it

    s.repo.write("tenants/base/agent.yaml", TENANT_AGENT)
    s.repo.commit("the agent, in legacy", ssh=keys.alice)
    code, output = s.run(config=config)
    assert code == 1, output
    assert "Pod/kube-system/agent" in output
    assert f"as Kustomization/flux-system/team applies it {BEFORE}" in output
    assert s.repo.ref(GATED) == found
    record = s.records()[-1]
    assert record["subject"]["presync"]["judgedFrom"] == moved_to
    blocking = [f for f in record["findings"] if f["severity"] == "error"]
    assert [f["rule"] for f in blocking] == ["pss-baseline-privileged"], blocking
    assert blocking[0]["metadata"]["appliedWith"] == BEFORE


@pytest.mark.parametrize("where", ["sqlite-volume-not-mounted", "postgresql-another-database"])
def test_presync_does_not_start_a_decision_log_that_is_not_there(
    setup: Callable[..., Setup], keys: Keys, where: str, request: pytest.FixtureRequest
) -> None:
    """A wrong decision log URL (a volume not mounted, another database) gave presync a new, empty
    log: no record of the gated ref, so the ref someone else moved was taken as found and judged
    onward from (exit 0, advanced; the unsigned commit pushed past the gate never judged). Refused
    now (exit 3) before anything is judged, naming the log and `trustgate log init`, and nothing
    is created there; started by `log init`, it is used (and knows nothing, which presync says)."""
    s = setup()
    assert s.run()[0] == 0
    s.repo.write("deploy/settings.yaml", _cm("2"))
    sneaked = s.repo.commit("pushed past the gate")  # unsigned
    _move_gated(s, sneaked)
    s.repo.write("deploy/settings.yaml", _cm("3"))
    tip = s.repo.commit("signed on top", ssh=keys.alice)
    code, output = s.run()
    assert code == 3 and MOVED in output, output  # the log the gate meant knows where it left the ref
    if where.startswith("sqlite"):
        (s.tmp / "not-mounted").mkdir()
        wrong = f"sqlite:///{s.tmp / 'not-mounted' / 'decisions.db'}"
        named = str(s.tmp / "not-mounted" / "decisions.db")
    else:
        wrong = request.getfixturevalue("postgres_server").create_database()
        named = wrong.rpartition("/")[2]

    for args in (("--decision-log", wrong), ("--decision-log", wrong, "--watch", "--interval", "1s")):
        code, output = s.run(*args)
        assert code == 3, output
        assert "no decision log here" in output and named in output, output
        assert "presync reads from it where it left each gated ref" in output, output
        assert "trustgate log init --store " in output and "a volume not" in output, output
        assert "advanced" not in output and s.repo.ref(GATED) == sneaked
    if where.startswith("sqlite"):
        assert not (s.tmp / "not-mounted" / "decisions.db").exists()
    else:
        import psycopg

        with psycopg.connect(wrong) as conn:
            assert conn.execute("SELECT to_regclass('decisions')").fetchone() == (None,)

    # The way out: started by name (once; again, it is left as it is), then presync uses it.
    result = CliRunner().invoke(main, ["log", "init", "--store", wrong], catch_exceptions=False)
    assert result.exit_code == 0 and "created a new, empty decision log in " in result.output, result.output
    assert named in result.output, result.output
    result = CliRunner().invoke(main, ["log", "init", "--store", wrong], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (
        "a decision log is already there" in result.output and "(0 records): nothing created" in result.output
    )
    code, output = s.run("--decision-log", wrong)
    assert code == 0 and f"advanced to {tip[:12]}" in output, output
    assert "this gate has no record of where it left" in output, output
