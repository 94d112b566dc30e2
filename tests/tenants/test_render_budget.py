"""Rendering is bounded in time, memory and output: a hostile template is cut off with the budget
error, remembered per template version, and the renderer keeps serving everyone else."""

from __future__ import annotations

import pytest

from tenants.templates import sandbox
from tenants.templates.rendering import RenderFailed, render_email

HOSTILE = {
    "nested loops that spin": "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}done",
    "string multiplication": "{{ 'x' * 10**8 }}",
    "a doubling chain": "{% set x = 'abcdefgh' %}" + "{% set x = x ~ x %}" * 40 + "{{ x|length }}",
    "output past the bound": "{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}{% endfor %}",
    "a huge power": "{{ 7 ** 99999999 }}",
}


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_templates_are_cut_off_with_the_budget_error(source):
    with pytest.raises(RenderFailed) as info:
        await render_email({"subject": "Hi {{name}}", "text": source}, {"name": "Ava"})
    assert info.value.kind == "budget" and info.value.error_class == "render_budget"
    # The renderer still serves the next template.
    assert (await render_email({"subject": "Hi {{name}}"}, {"name": "Bo"}))["subject"] == "Hi Bo"


async def test_an_over_budget_template_version_is_not_rendered_again(monkeypatch):
    monkeypatch.setattr(sandbox, "RENDER_TIMEOUT_SECONDS", 0.5)
    email = {"subject": "s", "text": HOSTILE["nested loops that spin"] + "{# v1 #}"}
    # Other event loops of the run (the in-process worker's) may keep renderers of their own.
    others = set(sandbox.child_pids())
    with pytest.raises(RenderFailed):
        await render_email(email, {})
    assert set(sandbox.child_pids()) <= others  # the spinning child was killed
    with pytest.raises(RenderFailed) as again:
        await render_email(email, {"other": "values"})
    assert again.value.kind == "budget" and set(sandbox.child_pids()) <= others  # answered from memory, no child
    # Another version of the template is a new template: rendered (and fine).
    assert (await render_email({"subject": "s", "text": "fixed"}, {}))["text"] == "fixed"


@pytest.mark.parametrize(
    "source, error",
    [
        ("{{ name.__class__.__mro__ }}", "SecurityError"),
        ("{{ nope }}", "UndefinedError"),
        ("{{ name.missing.deeper }}", "UndefinedError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ range(10**9)|list }}", "OverflowError"),
    ],
)
async def test_render_time_refusals_are_failures_not_crashes(source, error):
    with pytest.raises(RenderFailed) as info:
        await render_email({"subject": "s", "html": source}, {"name": "Ava"})
    assert info.value.kind == "refused" and info.value.message.startswith(error), info.value.message


async def test_html_is_escaped_and_non_ascii_survives_the_pipe():
    out = await render_email({"subject": "Olá {{name}} ✓", "html": "<b>{{name}}</b>"}, {"name": "<Zoë & co>"})
    assert out == {"subject": "Olá <Zoë & co> ✓", "text": None, "html": "<b>&lt;Zoë &amp; co&gt;</b>"}
