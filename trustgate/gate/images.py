"""The image phase of an evaluation: verify every image the documents use, and sign summaries.

Owns: the image policy, the verifier and the registry client (built on
first use; the registry client opens no connection before), turning each
image's problems into findings where the image is used, and the
verification summaries a decision issues (prepared before the decision is
recorded, attached after, so none names a decision the log does not hold).
Leaves out: which images a document uses (`trustgate.manifests.images`)
and how an image is verified (`trustgate.artifacts`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trustgate.config import Config
from trustgate.errors import ConfigError
from trustgate.gate.verdict import Waivers, finding_order, severity
from trustgate.manifests.images import CHART_PIN, resolve_charts
from trustgate.model import DocumentResult, Finding, ImageResult, ImageUse, Severity
from trustgate.policy import rego

if TYPE_CHECKING:
    from trustgate.artifacts.cache import VerificationCache
    from trustgate.artifacts.issuing import Issuer, Signed
    from trustgate.artifacts.policy import ImagePolicy
    from trustgate.artifacts.verifier import ImageVerifier
    from trustgate.decisions.log import DecisionLog
    from trustgate.model import Decision
    from trustgate.oci.client import Registry

_log = logging.getLogger("trustgate.images")


class ImageStage:
    """Image verification for one gate; per thread, like the gate (it holds registry connections)."""

    def __init__(
        self,
        config: Config,
        data: rego.PolicyData,
        *,
        waivers: Waivers,
        registry: Registry | None = None,
        image_cache: VerificationCache[ImageResult] | None = None,
        decision_log: DecisionLog | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.waivers = waivers
        self.policy: ImagePolicy | None = None
        self._verifier: ImageVerifier | None = None
        self._registry = registry
        self._owned_registry = False
        self._image_cache = image_cache
        self._decision_log = decision_log
        self._issuer: Issuer | None = None
        self._signed: list[tuple[ImageResult, Signed]] = []  # summaries of the decision being made
        if config.images.enabled:
            from trustgate.artifacts.policy import ImagePolicy  # sigstore loads only when images are checked

            self.policy = ImagePolicy(config.images, data=data)
            if config.images.summaries.issue is not None:
                from trustgate.artifacts.issuing import Issuer

                _builders_for_levels(config, data)
                self._issuer = Issuer.from_config(config.images.summaries.issue)

    @property
    def verifier(self) -> ImageVerifier:
        """The image verifier (built on first use; the registry client opens no connection before)."""
        if self._verifier is None:
            from trustgate.artifacts.verifier import ImageVerifier

            if self.policy is None:
                from trustgate.artifacts.policy import ImagePolicy

                self.policy = ImagePolicy(self.config.images, data=self.data)
            if self._registry is None:
                self._registry = _registry_client(self.config)
                self._owned_registry = True
            revocations = None
            if self._decision_log is not None and any(r.acceptance for r in self.policy.rules):
                from trustgate.revocations import Revocations

                revocations = Revocations(
                    self._decision_log.url,
                    refresh_seconds=self.config.images.summaries.revocation_refresh_seconds,
                )
            self._verifier = ImageVerifier(
                self.policy, self._registry, cache=self._image_cache, revocations=revocations
            )
        return self._verifier

    def close(self) -> None:
        """Close the registry connections this opened (not a registry it was given)."""
        if self._owned_registry and self._registry is not None:
            self._registry.close()
            self._registry, self._verifier, self._owned_registry = None, None, False

    def check(self, results: list[DocumentResult], *, gate: str = "ci") -> list[ImageResult]:
        """Verify every distinct image the documents use; add findings where each is used.

        At admission an image on a node-local registry is not asked for (`_node_local`).
        """
        _resolve_charts(results)
        uses = [use for r in results for use in r.images]
        if not uses:
            return []
        local = self._node_local(uses) if gate == "admission" else {}
        verified = self.verifier.verify_many(
            u.reference for u in uses if not u.unresolvable and u.reference not in local
        )
        unresolved = {
            (u.reference, u.unresolvable): self.verifier.unresolvable(
                u.reference, u.unresolvable, fix=CHART_PIN if u.chart is not None else ""
            )
            for u in uses
            if u.unresolvable
        }
        for result in results:
            for use in result.images:
                if use.unresolvable:
                    image = unresolved[use.reference, use.unresolvable]
                else:
                    image = local.get(use.reference) or verified[use.reference]
                self._findings(result, use, image)
            result.findings.sort(key=finding_order)
        return [*verified.values(), *local.values(), *unresolved.values()]

    def _node_local(self, uses: Sequence[ImageUse]) -> dict[str, ImageResult]:
        """The results of the images on a node-local registry (localhost, a loopback or link-local
        address) not listed in `images.registries.nodeLocal`: the kubelet pulls them from the
        node it runs on, where trustgate, in its own pod, would verify what its own address
        serves (or be refused, "could not verify", which fail-open namespaces admit). And of
        those on a registry named by a single label (`registry:5000`), not listed there either:
        trustgate's pod and the node resolve that name each their own way (found in review:
        trustgate could not resolve it, and a fail-open namespace admitted the image)."""
        from trustgate.oci.reference import (
            InvalidReferenceError,
            Reference,
            node_local,
            plain_registry,
            single_label,
        )

        shared = {plain_registry(r) for r in self.config.images.registries.node_local}
        out: dict[str, ImageResult] = {}
        for use in uses:
            if use.unresolvable or use.reference in out:
                continue
            try:
                ref = Reference.parse(use.reference)
            except InvalidReferenceError:
                continue  # verified as usual, which reports it
            if plain_registry(ref.registry) in shared:
                continue
            why = node_local(ref.registry)
            if why is not None:
                out[use.reference] = self.verifier.node_local(use.reference, ref, why)
            elif (named := single_label(ref.registry)) is not None:
                out[use.reference] = self.verifier.node_local(use.reference, ref, named, ambiguous=True)
        return out

    def _findings(self, result: DocumentResult, use: ImageUse, image: ImageResult) -> None:
        mode = image.mode or self.config.mode
        for problem in image.problems:
            weight = severity(problem.blocking, mode)
            not_evaluated = problem.rule == "image-unverifiable" and weight == Severity.ERROR
            metadata: dict[str, Any] = {"image": use.reference}
            if use.container:
                metadata["container"] = use.container
            if image.digest:
                metadata["digest"] = image.digest
            if image.rule:
                metadata["imageRule"] = image.rule
            if problem.attestation:
                metadata["attestation"] = problem.attestation
            finding = Finding(
                rule=problem.rule,
                severity=weight,
                rule_severity=Severity.ERROR if problem.blocking else Severity.WARNING,
                message=problem.message,
                source="registry" if not_evaluated else "supply-chain",
                fix=problem.fix,
                path=use.path,
                line=use.line,
                policy=f"images/{image.rule}" if image.rule else "images",
                metadata=metadata,
            )
            if self.waivers:
                self.waivers.apply(
                    result.namespace, result.kind, result.name, finding, scope_unknown=result.scope_unknown
                )
            result.findings.append(finding)

    def issue(self, gate: str, images: Sequence[ImageResult]) -> str:
        """Sign a verification summary for each image verified in full (`check`, `presync`).

        Returns the id the decision's record will have (each summary names it), or "".
        """
        if self._issuer is None or gate not in ("ci", "presync") or self.policy is None:
            return ""
        from trustgate.decisions.canonical import uuid7

        # The summaries name the decision; they are attached once it is recorded (`attach`), so
        # none points at a decision the log does not hold.
        planned_id = uuid7() if self._decision_log is not None else ""
        self._signed = []
        for image in images:
            try:
                signed = self._issuer.prepare(self.policy, image, decision_id=planned_id or None)
            except Exception:  # a summary is extra: never the reason `check` or `presync` fails
                _log.error("internal error while issuing the summary of %s", image.reference, exc_info=True)
                continue
            if signed is not None:
                image.issued = [signed.record]
                self._signed.append((image, signed))
        return planned_id

    def attach(self, decision: Decision) -> None:
        """Attach the summaries issued for a decision, once it is recorded."""
        signed, self._signed = self._signed, []
        if not signed:
            return
        if self._decision_log is not None and not decision.record_id:
            decision.notes.append("no verification summary was attached: the decision was not recorded")
            for image, _ in signed:
                image.issued = []
            return
        for image, summary in signed:
            problem = summary.attach(self.verifier.registry)
            if problem is not None:
                image.issued = []
                decision.notes.append(
                    f"the verification summary of {image.reference} was not attached: {problem}"
                )


def _registry_client(config: Config) -> Registry:
    from trustgate.oci.client import registry_client

    return registry_client(config.images.registries)


def _resolve_charts(results: Sequence[DocumentResult]) -> None:
    """Resolve the Helm charts Flux pulls (`ImageUse.chart`) against the HelmRepositories among
    `results`: what a chart is, and whether it is an artifact at all, is the HelmRepository's."""
    if not any(use.chart is not None for r in results for use in r.images):
        return
    repositories: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.chart_repository is not None and r.name:
            repositories.setdefault((r.namespace or "", r.name), []).append(r.chart_repository)
    for r in results:
        if any(use.chart is not None for use in r.images):
            r.images = resolve_charts(r.images, r.namespace or "", repositories)


def _builders_for_levels(config: Config, data: Mapping[str, Any]) -> None:
    """Refuse to issue under a rule asserting a Build level above 1 without builders listed in the
    policy data (`manifests.data` and data files, merged: the config alone may not hold them).

    Raises:
        ConfigError: a rule has `summaries.issue.buildLevel` above 1 and
            `data.trustgate.slsa.builders` is missing, empty or not a list of builder ids.
    """
    from trustgate.config import builders_listed

    for rule in config.images.rules:
        if (
            rule.summary_build_level is not None
            and rule.summary_build_level > 1
            and not builders_listed(data)
        ):
            raise ConfigError(
                f"image rule {rule.name!r}: summaries.issue.buildLevel {rule.summary_build_level} "
                "with no builders under data.trustgate.slsa.builders; no level above 1 is claimed "
                "without builders listed",
                where=config.origin,
                hint="list the builders under data.trustgate.slsa.builders (manifests.data or a data "
                "file), or leave buildLevel unset",
            )
