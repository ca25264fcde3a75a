"""Property-based fuzzing of every entry point: never a 5xx, never an action without auth."""

from __future__ import annotations

import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facteur.adapters.envelope import encode, seal
from facteur.decisions import ids
from facteur.decisions.journey import COMMAND_RECEIVED, WORKFLOW_REQUESTED
from tests.helpers import argo_oracle
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.support import (
    CALLBACK_TOKEN,
    ROLE_OTHER,
    ROLE_PLANNER,
    SPECS_DIR,
    asking_catalog,
    base_env,
    button_click,
    command,
    fresh_snowflake,
    sign,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=140)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def _interaction_like() -> st.SearchStrategy:
    """Bodies near what Discord sends: real commands with fields dropped or replaced."""
    base = command("plan")
    keys = sorted(base)
    return st.builds(
        lambda drop, replace, value, kind: {
            **{k: v for k, v in base.items() if k not in drop},
            **({replace: value} if replace else {}),
            "type": kind,
        },
        st.sets(st.sampled_from(keys), max_size=3),
        st.none() | st.sampled_from(keys),
        json_values,
        st.sampled_from([1, 2, 3, 4, 5, 6, 0, -1, "2", None]),
    )


def test_verify_never_fails_and_never_accepts_unsigned(load_function, sink) -> None:
    client = load_function("interaction_verify", base_env(K_SINK=sink.url))
    good = command("plan")
    good_body = json.dumps(good).encode()

    @FUZZ
    @given(
        body=st.binary(max_size=512) | st.just(good_body),
        signature=st.none() | header_text | st.just("00" * 64),
        timestamp=st.none() | header_text | st.just(str(int(time.time()))),
        content_type=st.none() | header_text,
    )
    def check(body, signature, timestamp, content_type) -> None:
        before = len(sink.received)
        headers = {}
        for name, value in (
            ("X-Signature-Ed25519", signature),
            ("X-Signature-Timestamp", timestamp),
            ("Content-Type", content_type),
        ):
            if value is not None:
                headers[name] = value
        response = client.post("/", data=body, headers=headers)
        assert response.status_code == 401
        assert len(sink.received) == before

    check()


def test_verify_signed_garbage_never_5xx(load_function, sink) -> None:
    client = load_function("interaction_verify", base_env(K_SINK=sink.url))

    @FUZZ
    @given(payload=_interaction_like() | json_values)
    def check(payload) -> None:
        body = json.dumps(payload).encode()
        response = client.post("/", data=body, headers=sign(body))
        assert response.status_code in (200, 400), response.get_data()
        # Without the specs the property still holds; only the schema check is left out.
        if response.status_code == 200 and (SPECS_DIR / "discord").exists():
            assert_interaction_response(response.get_json())

    check()


def test_verify_forwards_only_facteurs_components_as_they_were_clicked(load_function, sink) -> None:
    """A signed component interaction of any custom_id, type and values: never a 5xx, and
    forwarded only as one of facteur's buttons, or a pick of one step in its select menu."""
    client = load_function("interaction_verify", base_env(K_SINK=sink.url))
    custom = st.sampled_from(
        ["facteur:cancel:abcdefgh12", "facteur:logs:abcdefgh12", "facteur:approve:abcdefgh12:42"]
    ) | st.text(max_size=120)
    values = st.none() | st.lists(st.text(max_size=12) | st.integers(), max_size=3) | json_values

    @FUZZ
    @given(custom_id=custom, component_type=st.sampled_from([2, 3, 5, "3", None]), values=values)
    def check(custom_id, component_type, values) -> None:
        payload = button_click(custom_id if isinstance(custom_id, str) else "x")
        payload["data"] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            payload["data"]["values"] = values
        before = len(sink.received)
        body = json.dumps(payload).encode()
        response = client.post("/", data=body, headers=sign(body))
        assert response.status_code in (200, 400), response.get_data()
        for event in sink.events()[before:]:
            forwarded = event.get_data()
            match = ids.CUSTOM_ID.fullmatch(custom_id)
            assert match is not None and forwarded["action"] == match[1]
            step = forwarded["step"]
            assert step is None or ids.STEP.fullmatch(step)
            if component_type == 3:
                assert match[3] is None and values == [step]

    check()


# Option text near the holes: tag syntax, braces, controls, surrogates, astral characters.
option_text = st.lists(
    st.sampled_from(["{{", "}}", "{", "}", "{{=1}}", "\x00", "\r", "\x85", "\ud800", "\U000e0001"])
    | st.characters(codec=None, exclude_categories=()).map(str),
    max_size=12,
).map("".join)
# Literals and nesting that Python's json takes and no other hop can carry.
raw_extras = st.sampled_from(["NaN", "-Infinity", "1e999", "[" * 40 + "]" * 40, "1", '"x"'])


def test_verify_forwards_only_declared_allowed_text_that_argo_keeps(load_function, sink) -> None:
    """No 5xx on any shape; whatever is forwarded is a declared slash command from a caller the
    role map allows, and every option value passes Argo's two substitution passes unchanged."""
    client = load_function("interaction_verify", base_env(K_SINK=sink.url))

    @FUZZ
    @given(
        command_type=st.sampled_from([1, 2, 3]),
        subcommand=st.none() | st.sampled_from(["deep", "cancel"]),
        group=st.booleans(),
        value=option_text,
        roles=st.sampled_from([[ROLE_PLANNER], [ROLE_OTHER], []]),
        extra=st.none() | raw_extras,
    )
    def check(command_type, subcommand, group, value, roles, extra) -> None:
        options = [{"name": "objective", "type": 3, "value": value}]
        if subcommand:
            options = [{"name": subcommand, "type": 1, "options": options}]
            if group:
                options = [{"name": "group", "type": 2, "options": options}]
        payload = command("plan", options, roles=roles)
        payload["data"]["type"] = command_type
        body = json.dumps(payload).encode()
        if extra is not None:
            body = body.replace(b'"type": 2', b'"type": 2, "extra": ' + extra.encode(), 1)
        before = len(sink.received)
        response = client.post("/", data=body, headers=sign(body))
        assert response.status_code in (200, 400), response.get_data()
        if len(sink.received) == before:
            return
        (event,) = sink.events()[before:]
        forwarded = event.get_data()
        assert extra in (None, "1", '"x"')
        assert (command_type, subcommand, roles) == (1, None, [ROLE_PLANNER])
        (option,) = forwarded["options"]
        assert option["value"] == value
        parameters = {"objective": value, "action": "plan"}
        assert argo_oracle.survives(argo_oracle.PROBE, parameters | {"project": ""})

    check()


def test_event_receivers_never_5xx_and_never_act_unsigned(load_function) -> None:
    clients = {
        name: load_function(name, base_env()) for name in ("command_route", "workflow_submit")
    }
    forged = seal("x" * 40, event_type=COMMAND_RECEIVED, source="/s", event_id="1", data={})
    forged_headers, forged_body = encode(forged)

    @FUZZ
    @given(
        name=st.sampled_from(sorted(clients)),
        body=st.binary(max_size=256) | st.just(forged_body),
        ce_headers=st.dictionaries(
            st.sampled_from(
                ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-facteursig", "Content-Type"]
            ),
            header_text | st.sampled_from([COMMAND_RECEIVED, WORKFLOW_REQUESTED, "1.0"]),
        ),
        structured=st.booleans(),
    )
    def check(name, body, ce_headers, structured) -> None:
        headers = dict(forged_headers) if structured else ce_headers
        response = clients[name].post("/", data=body, headers=headers)
        assert 400 <= response.status_code < 500, response.get_data()

    check()


def test_status_callback_never_5xx_and_never_acts_unauthenticated(load_function) -> None:
    client = load_function("status_callback", base_env())

    @FUZZ
    @given(
        authorization=st.none() | header_text | st.just(f"Bearer {CALLBACK_TOKEN[:-1]}"),
        body=st.binary(max_size=256),
    )
    def check(authorization, body) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = client.post("/", data=body, headers=headers)
        assert response.status_code == 401

    check()


def test_status_callback_ticks_never_5xx_and_never_run_unauthenticated(load_function) -> None:
    client = load_function("status_callback", base_env(FACTEUR_CALLBACK_TICK_TOKEN="t" * 40))

    @FUZZ
    @given(
        body=st.binary(max_size=256)
        | json_values.map(lambda v: json.dumps({"specversion": "1.0", "data": v}).encode()),
        ce_type=st.none() | header_text | st.just("dev.knative.sources.ping"),
        structured=st.booleans(),
    )
    def check(body, ce_type, structured) -> None:
        headers = (
            {"Content-Type": "application/cloudevents+json"}
            if structured
            else {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "Content-Type": "application/json",
            }
        )
        if ce_type is not None and not structured:
            headers["ce-type"] = ce_type
        response = client.post("/", data=body, headers=headers)
        assert response.status_code == 401, response.get_data()

    check()


def test_status_callback_nudges_never_5xx_and_only_ever_read_argo(load_function) -> None:
    # A nudge (decisions/nudge.py) is unauthenticated: whatever it says, it may only make
    # status_callback read Argo. Argo here is the local dry run, which shows every run Running,
    # so no nudge may ever report anything.
    from facteur.decisions.nudge import NUDGE_TYPES

    client = load_function("status_callback", base_env())
    names = st.sampled_from(["plan-1", "Plan_1", "", "x" * 70]) | st.text(max_size=20)
    references = st.fixed_dictionaries(
        {},
        optional={
            "apiVersion": st.sampled_from(["argoproj.io/v1alpha1", "v1", "x/y"]) | json_values,
            "kind": st.sampled_from(["Workflow", "Pod"]) | json_values,
            "name": names | json_values,
            "namespace": st.sampled_from(["agents", "default"]) | json_values,
            "uid": json_values,
        },
    )

    @FUZZ
    @given(
        ce_type=st.sampled_from(NUDGE_TYPES),
        data=references.map(json.dumps).map(str.encode) | st.binary(max_size=256),
        subject=st.none() | header_text,
        structured=st.booleans(),
    )
    def check(ce_type, data, subject, structured) -> None:
        if structured:
            try:
                inner = json.loads(data)
            except ValueError:
                inner = data.decode("latin-1")
            event = {"specversion": "1.0", "type": ce_type, "id": "1", "source": "/s"}
            event |= {"data": inner} | ({} if subject is None else {"subject": subject})
            body = json.dumps(event).encode()
            headers = {"Content-Type": "application/cloudevents+json"}
            # NaN and Infinity make the envelope non-standard JSON: no type can be read from
            # it, so it is answered as a tick without its token.
            readable = "NaN" not in body.decode() and "Infinity" not in body.decode()
        else:
            body = data
            headers = {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "https://10.96.0.1:443",
                "ce-type": ce_type,
                "Content-Type": "application/json",
            }
            if subject is not None:
                headers["ce-subject"] = subject
            readable = True
        response = client.post("/", data=body, headers=headers)
        assert response.status_code in ((202, 400) if readable else (202, 400, 401)), body
        if response.status_code == 202:
            assert response.get_json()["result"] in {"ignored", "running", "unconfirmed"}

    check()


def _asking_catalog(path: Path) -> Path:
    return asking_catalog(path)


option_names = st.sampled_from(["project", "objective", "deadline", "branch", "x"]) | st.text(
    max_size=8
)


def test_verify_autocompletes_never_5xx_and_never_hand_off(load_function, sink, tmp_path) -> None:
    """A signed AUTOCOMPLETE of any command, options and focus: never a 5xx, every answer
    suggestions within Discord's limits, and nothing ever handed on."""
    catalog = _asking_catalog(tmp_path / "commands.yaml")
    client = load_function(
        "interaction_verify",
        base_env(K_SINK=sink.url, FACTEUR_COMMANDS_CATALOG_FILE=str(catalog)),
    )
    options = st.lists(
        st.fixed_dictionaries(
            {"name": option_names, "type": st.sampled_from([3, 4, "3"]), "value": json_values},
            optional={"focused": st.booleans() | json_values},
        )
        | json_values,
        max_size=3,
    )

    @FUZZ
    @given(
        name=st.sampled_from(["plan", "review", "status", "deploy"]),
        options=options | json_values,
        roles=st.sampled_from([[ROLE_PLANNER], [ROLE_OTHER]]),
    )
    def check(name, options, roles) -> None:
        payload = command(name, roles=roles)
        payload["type"] = 4
        payload["data"]["options"] = options
        before = len(sink.received)
        body = json.dumps(payload).encode()
        response = client.post("/", data=body, headers=sign(body))
        assert response.status_code in (200, 400), response.get_data()
        if response.status_code == 200:
            assert response.get_json()["type"] == 8
            if (SPECS_DIR / "discord").exists():
                assert_interaction_response(response.get_json())
        assert len(sink.received) == before

    check()


def test_verify_hands_on_only_the_submits_of_facteurs_forms(load_function, sink, tmp_path) -> None:
    """A signed MODAL_SUBMIT of any custom_id and components: never a 5xx, and handed on only
    as the command of a form the catalog declares, with that form's text fields, from a caller
    the role map allows."""
    catalog = _asking_catalog(tmp_path / "commands.yaml")
    client = load_function(
        "interaction_verify",
        base_env(K_SINK=sink.url, FACTEUR_COMMANDS_CATALOG_FILE=str(catalog)),
    )
    custom = st.sampled_from(
        ["facteur:form:implement", "facteur:form:plan", "facteur:form:implement:x"]
    ) | st.text(max_size=40)
    text_input = st.fixed_dictionaries(
        {
            "type": st.sampled_from([4, 4, 3, "4"]),
            "custom_id": st.sampled_from(["project", "branch", "notes", "admin"]) | json_values,
            "value": st.sampled_from(["facteur", "main", "", "{{x}}"]) | json_values,
        }
    )
    rows = st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from([1, 1, 18, 10]),
                "components": st.lists(text_input, max_size=2),
            }
        )
        | json_values,
        max_size=6,
    )
    filled = [
        {"type": 1, "components": [{"type": 4, "custom_id": name, "value": value}]}
        for name, value in (("project", "facteur"), ("branch", "main"), ("notes", ""))
    ]
    forwarded_any = []

    @FUZZ
    @given(
        custom_id=custom,
        components=rows | st.just(filled),
        roles=st.sampled_from([[ROLE_PLANNER], [ROLE_OTHER]]),
    )
    def check(custom_id, components, roles) -> None:
        payload = command("implement", roles=roles, interaction_id=fresh_snowflake())
        payload["type"] = 5
        payload["data"] = {"custom_id": custom_id, "components": components}
        before = len(sink.received)
        body = json.dumps(payload).encode()
        response = client.post("/", data=body, headers=sign(body))
        assert response.status_code in (200, 400), response.get_data()
        if response.status_code == 200 and (SPECS_DIR / "discord").exists():
            assert_interaction_response(response.get_json())
        for event in sink.events()[before:]:
            forwarded = event.get_data()
            assert custom_id == "facteur:form:implement"
            assert roles == [ROLE_PLANNER]
            assert forwarded["command"] == "implement"
            names = [option["name"] for option in forwarded["options"]]
            assert set(names) <= {"project", "branch", "ticket", "notes"}
            assert len(set(names)) == len(names)
            assert {"project", "branch"} <= set(names)
            forwarded_any.append(event)

    check()
    assert forwarded_any, "no example was a good submit: the property above was never tried"
