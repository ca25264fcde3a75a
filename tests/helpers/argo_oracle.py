"""A model of what Argo does to a workflow parameter between the API and a step's container.

Followed from argoproj/argo-workflows @ f016ad89eb269d282aec06dc491c29f396a38df4 (v4.1) and
valyala/fasttemplate @ 2a2d1afadadf9715bfa19683cdaeac8347e5d9f9 (v1.2.2, Argo's go.mod):

- argo-server validates every create (server/workflow/workflow_server.go:124 -> validate.Workflow
  -> workflow/validate/validate.go:545 ProcessArgs), and the controller runs it again for every
  node (workflow/controller/operator.go:2256 ProcessArgs, :2539 SubstituteParams).
- SubstituteParams (workflow/common/util.go:273-329) marshals the template to JSON (:274),
  replaces the global and local parameters (:280), unmarshals (:285), then runs Replace a second
  time over the first pass's output text (:319) with the inputs added to the same map.
- Replace (util/template/replace.go:41-60) refuses input that is not JSON and output that is not
  JSON (:55), and fasttemplate cuts the text into tags at each `{{` and the next `}}`; a `{{`
  with no `}}` after it is an error (fasttemplate template.go:249-265).
- A tag that starts with `=` is an expression, compiled and evaluated (util/template/kind.go:22,
  template.go:40-44, expression_template.go:205-280), and the validator skips those
  (util/template/validate.go:17-18). Its result is JSON-marshalled into the text, where the
  second pass reads it again.
- A simple tag is looked up with its spaces trimmed; when it is not found and it holds a `{{`,
  its last `{{…` part is looked up as a nested tag (simple_template.go:18-39); otherwise it is
  written back unchanged (:55). A value found is escaped with Go's strconv.Quote, quotes
  stripped, and spliced into the JSON text (:72-74).

What this model cannot do, it treats as a change: an expression other than a plain variable read
raises Evaluated, and every error Argo would return raises Refused.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

PREFIX, SUFFIX = "{{", "}}"

# Globals Argo sets for every workflow (workflow/controller/operator.go setGlobalParameters);
# their values here are only markers, to see whether a user's text pulled one in.
WORKFLOW_GLOBALS = {
    "workflow.name": "<workflow.name>",
    "workflow.namespace": "<workflow.namespace>",
    "workflow.uid": "<workflow.uid>",
    "workflow.serviceAccountName": "<workflow.serviceAccountName>",
    "workflow.creationTimestamp": "<workflow.creationTimestamp>",
    "workflow.priority": "<workflow.priority>",
    "workflow.mainEntrypoint": "<workflow.mainEntrypoint>",
}

# Every way a template may place a parameter: alone, inside text, beside another one, in an
# input's default and inside an expression that reads it as a variable.
PROBE: dict[str, Any] = {
    "name": "probe",
    "inputs": {"parameters": [{"name": "copy", "value": "{{workflow.parameters.objective}}"}]},
    "container": {
        "image": "busybox",
        "args": [
            "{{workflow.parameters.objective}}",
            "say {{workflow.parameters.objective}} now",
            "{{workflow.parameters.objective}}{{workflow.parameters.project}}",
            "{{inputs.parameters.copy}}",
            "{{=workflow.parameters.project}}",
        ],
    },
}


class Refused(Exception):
    """Argo would refuse the workflow or fail the node."""


class Evaluated(Exception):
    """Argo would compile and run an expression found in the text."""


def _go_printable(char: str) -> bool:
    # strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    # Python's tables stand in for Go's.
    return char == " " or unicodedata.category(char)[0] in "LMNPS"


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SHORT_ESCAPES |= {"\v": "\\v", '"': '\\"', "\\": "\\\\"}


def go_quote_inner(value: str) -> str:
    """strconv.Quote(value) without its quotes (Go's strconv/quote.go appendEscapedRune)."""
    out = []
    for char in value:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif _go_printable(char):
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def replace(text: str, values: Mapping[str, str]) -> str:
    """util/template.Replace with allowUnresolved=true, as SubstituteParams calls it."""
    if not _is_json(text):
        raise Refused("cannot do template replacements with invalid JSON")
    out, rest = [], text
    while True:
        start = rest.find(PREFIX)
        if start < 0:
            out.append(rest)
            break
        out.append(rest[:start])
        rest = rest[start + len(PREFIX) :]
        end = rest.find(SUFFIX)
        if end < 0:
            raise Refused("fasttemplate: cannot find end tag")
        tag, rest = rest[:end], rest[end + len(SUFFIX) :]
        out.append(_one_tag(tag, values))
    result = "".join(out)
    if not _is_json(result):
        raise Refused("cannot finish template replacement because the result was invalid JSON")
    return result


def _one_tag(tag: str, values: Mapping[str, str]) -> str:
    if tag.startswith("="):
        return _expression(tag[1:], values)
    found = values.get(tag.strip())
    if found is not None:
        return go_quote_inner(found)
    index = tag.rfind(PREFIX)
    if index > 0 and tag[index + 2 :] in values:
        return PREFIX + tag[:index] + go_quote_inner(values[tag[index + 2 :]])
    return PREFIX + tag + SUFFIX


def _expression(expression: str, values: Mapping[str, str]) -> str:
    """An expression that only reads a variable, as a template author writes one; any other is
    code the model does not run, so Evaluated."""
    try:
        found = values.get(json.loads(f'"{expression}"').strip())
    except ValueError:
        found = None
    if found is None:
        raise Evaluated(expression)
    # The result is json.Marshal-ed, its quotes stripped (expression_template.go:260-276); Go's
    # encoder also escapes <, >, & and U+2028/U+2029.
    marshalled = json.dumps(found, ensure_ascii=False)[1:-1]
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        marshalled = marshalled.replace(char, escaped)
    return marshalled.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_decoded(value: str) -> str:
    # Go's JSON decoder turns a lone surrogate (\ud800) into U+FFFD.
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)


def substitute(template: Mapping[str, Any], parameters: Mapping[str, str]) -> Any:
    """A template as its pod would get it, after both passes of SubstituteParams."""
    values = dict(WORKFLOW_GLOBALS)
    values |= {f"workflow.parameters.{k}": _go_decoded(v) for k, v in parameters.items()}
    # json.Marshal; Go also escapes <, > and & in the template's own text, which does not matter
    # here because no user text is in it yet.
    first = replace(json.dumps(template, ensure_ascii=False, separators=(",", ":")), values)
    # The second pass adds the template's inputs, as the first pass left them (util.go:290-296).
    for parameter in json.loads(first).get("inputs", {}).get("parameters", []):
        if isinstance(parameter.get("value"), str):
            values[f"inputs.parameters.{parameter['name']}"] = parameter["value"]
    second = replace(first, values)
    return json.loads(second)


def survives(template: Mapping[str, Any], parameters: Mapping[str, str]) -> bool:
    """Whether Argo hands the template every parameter exactly as sent."""
    try:
        substitute(template, parameters)
    except (Refused, Evaluated):
        return False
    return True
