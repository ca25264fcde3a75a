"""What a run's messages show: one palette, who asked and what, and Discord's limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from facteur.decisions import render
from facteur.decisions.render import PHASE_COLOURS

RUN = {"command": "plan", "workflow": "plan-1", "namespace": "agents", "correlation_id": "c" * 32}


def test_one_palette_for_every_message() -> None:
    for phase in ("Succeeded", "Failed", "Error", "Deleted"):
        outcome = render.final_status(
            **RUN, status=phase, duration=1.0, failures=[], message=None, ui_url="https://u"
        )
        status = render.status_report(
            **RUN, phase=phase, received_at=0.0, ui_url="https://u", duration=1.0
        )
        assert outcome["embeds"][0]["color"] == status["embeds"][0]["color"] == PHASE_COLOURS[phase]
    # Running is not Error's colour any more.
    assert PHASE_COLOURS["Running"] not in (PHASE_COLOURS["Error"], PHASE_COLOURS["Failed"])
    started = render.submitted(**RUN, ui_url="https://u")
    assert started["embeds"][0]["color"] == PHASE_COLOURS["Running"]


def test_the_request_summary_is_short_and_stays_on_one_line() -> None:
    options = [
        {"name": "objective", "type": 3, "value": "ship\nit `now`"},
        {"name": "project", "type": 3, "value": "x" * 500},
        {"name": "nested", "type": 3, "value": {"a": 1}},
    ]
    summary = render.request_summary(options)
    assert summary is not None
    assert summary.startswith("objective: ship it 'now' · project: xxx")
    assert "\n" not in summary and "`" not in summary and "nested" not in summary
    assert len(summary) <= render.SUMMARY_LIMIT
    assert render.request_summary([]) is None


@given(
    st.lists(
        st.fixed_dictionaries(
            {"name": st.text(min_size=1, max_size=40), "value": st.text(max_size=2000)}
        ),
        max_size=25,
    )
)
def test_any_request_fits_discords_field_limit(options: list[dict[str, str]]) -> None:
    summary = render.request_summary(options)
    message = render.submitted(**RUN, ui_url="https://u", user_id="1", summary=summary)
    for field in message["embeds"][0]["fields"]:
        assert len(field["value"]) <= 1024 and len(field["name"]) <= 256
