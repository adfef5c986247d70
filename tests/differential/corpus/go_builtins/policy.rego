# Built-ins whose regorus version answers otherwise than OPA's (ADR 0008, item 13):
# the tester's cases, through negation, comprehensions and rule heads.
package corpus.go_builtins

import rego.v1

deny contains msg if {
	not regex.match(`^[\w.-]+$`, input.metadata.name)
	msg := sprintf("name %q has characters outside [A-Za-z0-9_.-]", [input.metadata.name])
}

deny contains "port must be digits" if {
	not regex.match(`^\d+$`, input.port)
}

deny contains "word boundary" if regex.match(`\bß\b`, input.s)

deny contains "space" if regex.match(`\s`, input.t)

deny contains "name too short (min 2 characters)" if count(input.metadata.name) < 2

deny contains "label value longer than 3" if {
	not count(input.metadata.labels.v) <= 3
}

deny contains sprintf("blocked host %s", [input.host]) if {
	some pattern in ["ev?l.example.com", "x?.example.com"]
	glob.match(pattern, ["."], input.host)
}

deny contains "single-char tag" if glob.match("?", [], input.tag)

deny contains "tag must not start with 'a'" if not glob.match("[^a]*", [], input.tag2)

deny contains sprintf("version %s is below 2.0.0", [input.version]) if {
	semver.is_valid(input.version)
	semver.compare(input.version, "2.0.0") < 0
}

deny contains "cpu limit of at least 1 core not allowed" if units.parse(input.cpu) >= 1

deny contains "memory request below 2 bytes" if units.parse_bytes(input.mem) < 2

deny contains "annotation is not valid JSON" if not json.is_valid(input.a)

deny contains "config is not valid YAML (for OPA)" if not yaml.is_valid(input.y)

deny contains "pattern is invalid" if not regex.is_valid(input.p)

deny contains msg if {
	out := regex.replace(input.s, `x{,2}`, "")
	msg := sprintf("replaced: %v", [out])
}

deny contains "more than 3 pieces" if count(regex.split("", input.s)) > 3

deny contains "debug mode enabled in app config" if {
	cfg := yaml.unmarshal(input.data["config.yaml"])
	cfg.debug == true
}

deny contains "file mode too open" if {
	cfg := yaml.unmarshal(input.data["config.yaml"])
	cfg.mode > 420
}

deny contains "privileged via merged defaults" if {
	cfg := yaml.unmarshal(input.data["config.yaml"])
	cfg.privileged == true
}

deny contains "reserved name" if upper(input.name) == "STRASSE"

deny contains "greek" if lower(input.g) == "οδοσ"

deny contains "ampersand or a/b in tag" if regex.match(`[a&&b]`, input.tag)

warn contains sprintf("upper %v", [[upper(x) | some x in input.words]]) if true

warn contains sprintf("count %v", [[count(x) | some x in input.words]]) if true

warn contains sprintf("%03c|%06x|%.0x", [input.c, input.id, input.f]) if true
