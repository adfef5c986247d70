# `regex.match` and `regex.upper` here are the imported package's functions, not built-ins.
package corpus.shadowed_builtins

import rego.v1

import data.corpus.shadowed_builtins.regex

deny contains "matched" if regex.match(`^z$`, input.metadata.name)

deny contains "matched input" if regex.match(input.p, input.x)

deny contains "custom" if regex.upper(input.kind) == "custom"
