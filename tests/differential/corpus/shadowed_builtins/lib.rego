# Functions named like built-ins, called through an import (ADR 0008, item 13).
package corpus.shadowed_builtins.regex

import rego.v1

match(_, _) := true

upper(x) := "custom" if is_string(x)
