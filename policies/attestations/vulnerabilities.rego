# Vulnerability scans (cosign's vuln predicate, https://cosign.sigstore.dev/attestation/vuln/v1,
# with a Trivy or Grype JSON report as scanner.result): no vulnerability of a
# blocked severity that has been public for longer than the grace period, and
# a scan recent enough to mean something.
#
# Data (all optional):
#   data.trustgate.vuln.severities         blocked severities, default ["CRITICAL"]
#   data.trustgate.vuln.grace_days         days a fix may take after publication, default 0
#   data.trustgate.vuln.max_scan_age_days  oldest acceptable scan, default 7
#   data.trustgate.vuln.ignore             vulnerability ids accepted by the team (e.g. not reachable)
package trustgate.attestations.vuln

import rego.v1

# Only data.trustgate.vuln: a rule that reads all of `data` depends on itself, which
# OPA rejects (rego_recursion_error) and trustgate refuses (ADR 0008).
default _settings := {}

_settings := data.trustgate.vuln

_severities := {upper(s) | some s in object.get(_settings, "severities", ["CRITICAL"])}

_grace_ns := object.get(_settings, "grace_days", 0) * _day_ns

_max_age_ns := object.get(_settings, "max_scan_age_days", 7) * _day_ns

_ignore := {id | some id in object.get(_settings, "ignore", [])}

_day_ns := ((24 * 60) * 60) * 1000000000

_result := object.get(input.predicate, ["scanner", "result"], {})

# Trivy: Results[].Vulnerabilities[] with VulnerabilityID, Severity, PublishedDate.
findings contains {"id": v.VulnerabilityID, "severity": upper(v.Severity), "published": object.get(v, "PublishedDate", ""), "package": object.get(v, "PkgName", "")} if {
	some r in object.get(_result, "Results", [])
	some v in object.get(r, "Vulnerabilities", [])
}

# Grype: matches[].vulnerability with id, severity; publication date where the feed gives one.
findings contains {"id": m.vulnerability.id, "severity": upper(m.vulnerability.severity), "published": object.get(m.vulnerability, "published", ""), "package": object.get(m, ["artifact", "name"], "")} if {
	some m in object.get(_result, "matches", [])
}

deny contains msg if {
	input.predicateType != "https://cosign.sigstore.dev/attestation/vuln/v1"
	msg := sprintf("is %s, not a cosign vulnerability scan", [input.predicateType])
}

deny contains msg if {
	some f in findings
	f.severity in _severities
	not f.id in _ignore
	_past_grace(f.published)
	msg := sprintf("%s %s in %s%s", [f.severity, f.id, _package(f), _age(f.published)])
}

deny contains "the scan has no scanFinishedOn time" if {
	not input.predicate.metadata.scanFinishedOn
}

deny contains msg if {
	finished := time.parse_rfc3339_ns(input.predicate.metadata.scanFinishedOn)
	time.now_ns() - finished > _max_age_ns
	msg := sprintf("the scan finished on %s, more than %d days ago: rescan the image", [input.predicate.metadata.scanFinishedOn, object.get(_settings, "max_scan_age_days", 7)])
}

# Without a publication date the grace period cannot be granted.
_past_grace(published) if published == ""

_past_grace(published) if {
	published != ""
	time.now_ns() - time.parse_rfc3339_ns(published) > _grace_ns
}

_package(f) := f.package if f.package != ""

_package(f) := "the image" if f.package == ""

_age(published) := "" if published == ""

_age(published) := sprintf(", public since %s", [substring(published, 0, 10)]) if published != ""
