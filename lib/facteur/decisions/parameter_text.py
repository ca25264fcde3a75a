"""What user text may hold to reach a workflow exactly as typed. Pure.

Argo substitutes parameters into a template's JSON text, then substitutes again over its own
output (workflow/common/util.go SubstituteParams), so text that looks like a tag is read as one:
`{{workflow.name}}` is replaced and `{{=…}}` is evaluated. Each value is escaped with Go's
strconv.Quote before it is spliced into JSON, and some of Go's escapes (\\x01, \\a, \\U000e0001)
are not JSON, so Argo refuses the whole workflow. The README's "Writing your own
WorkflowTemplate" cites the source; tests/helpers/argo_oracle.py models it.

Two ways through: plain text that cannot form a tag (checked here), or, for a command whose
catalog entry says `parameter_encoding: base64`, the value's UTF-8 in base64, which holds no
brace at all and which the template decodes.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from typing import Final, Literal

Encoding = Literal["text", "base64"]
PLAIN: Final = "text"
BASE64: Final = "base64"

# Unicode's "Cc" but tab and newline, which people type; and lone surrogates, which are not text
# at all (Go's JSON decoder turns them into U+FFFD). Refused at the door.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
BRACES = ("{", "}")


def _code(char: str) -> str:
    return f"U+{ord(char):04X}"


def control_problem(value: str) -> str | None:
    """Why `value` may not be accepted at all, or None: control characters and lone surrogates."""
    if found := _SURROGATE.search(value):
        return f"is not valid Unicode ({_code(found[0])})"
    if found := _CONTROL.search(value):
        return f"holds a control character ({_code(found[0])}); only tab and newline may be used"
    return None


def argo_problem(value: str) -> str | None:
    """Why Argo would not pass plain `value` on unchanged, or None when it would."""
    if "{{" in value or "}}" in value:
        return "holds `{{` or `}}`, which Argo would read as one of its own template tags"
    # A brace at either end can join the brace of a neighbouring value or tag into one.
    if value.startswith(BRACES) or value.endswith(BRACES):
        return "starts or ends with a brace, which Argo could join to a neighbouring tag"
    for found in _ASTRAL.finditer(value):
        char = found[0]
        # Go's strconv.Quote writes a non-printable rune above U+FFFF as \U0010ffff, which is not
        # JSON. Python's tables stand in for Go's: they are older, so this refuses more, never less.
        if ord(char) > 0xFFFF and unicodedata.category(char)[0] not in "LMNPS":
            return f"holds {_code(char)}, a character Argo cannot carry"
    return None


def encode(value: str, encoding: Encoding) -> str:
    """The parameter value facteur sends for `value` under the command's encoding."""
    if encoding == BASE64:
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    return value
