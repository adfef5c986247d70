package trustgate.attestations.vuln_test

import rego.v1

import data.trustgate.attestations.vuln

_type := "https://cosign.sigstore.dev/attestation/vuln/v1"

_recent := time.format([time.now_ns() - ((24 * 3600) * 1000000000), "UTC", "2006-01-02T15:04:05Z07:00"])

_trivy(vulns) := {
	"predicateType": _type,
	"predicate": {
		"scanner": {"uri": "pkg:github/aquasecurity/trivy@0.50.0", "result": {"Results": [{"Target": "app", "Vulnerabilities": vulns}]}},
		"metadata": {"scanStartedOn": _recent, "scanFinishedOn": _recent},
	},
}

_critical_old := {"VulnerabilityID": "CVE-2021-44228", "Severity": "CRITICAL", "PkgName": "log4j-core", "PublishedDate": "2021-12-10T10:15:00Z"}

_critical_new := {"VulnerabilityID": "CVE-2026-0001", "Severity": "CRITICAL", "PkgName": "libx", "PublishedDate": _recent}

_high := {"VulnerabilityID": "CVE-2020-1", "Severity": "HIGH", "PkgName": "liby", "PublishedDate": "2020-01-01T00:00:00Z"}

test_a_clean_recent_scan_passes if {
	count(vuln.deny) == 0 with input as _trivy([_high])
}

test_an_old_critical_is_denied_naming_package_and_date if {
	msgs := vuln.deny with input as _trivy([_critical_old, _high])
	msgs == {"CRITICAL CVE-2021-44228 in log4j-core, public since 2021-12-10"}
}

test_a_new_critical_inside_the_grace_period_passes if {
	count(vuln.deny) == 0 with input as _trivy([_critical_new]) with data.trustgate.vuln as {"grace_days": 14}
}

test_without_grace_a_new_critical_is_denied if {
	count(vuln.deny) == 1 with input as _trivy([_critical_new])
}

test_ignored_ids_pass if {
	count(vuln.deny) == 0 with input as _trivy([_critical_old]) with data.trustgate.vuln as {"ignore": ["CVE-2021-44228"]}
}

test_blocked_severities_are_configurable if {
	count(vuln.deny) == 2 with input as _trivy([_critical_old, _high])
		with data.trustgate.vuln as {"severities": ["critical", "high"]}
}

test_grype_matches_are_read if {
	statement := object.union(_trivy([]), {"predicate": {"scanner": {"result": {"matches": [{
		"vulnerability": {"id": "GHSA-xxxx", "severity": "Critical"},
		"artifact": {"name": "openssl"},
	}]}}}})
	vuln.deny == {"CRITICAL GHSA-xxxx in openssl"} with input as statement
}

test_an_old_scan_is_denied if {
	statement := object.union(_trivy([]), {"predicate": {"metadata": {"scanFinishedOn": "2020-01-01T00:00:00Z"}}})
	msgs := vuln.deny with input as statement
	msgs == {"the scan finished on 2020-01-01T00:00:00Z, more than 7 days ago: rescan the image"}
}

test_a_scan_without_time_is_denied if {
	statement := {"predicateType": _type, "predicate": {"scanner": {"result": {}}}}
	"the scan has no scanFinishedOn time" in vuln.deny with input as statement
}
