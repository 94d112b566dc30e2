"""Locale fallback matches the language before it falls back to the template's default."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tenants.templates.rendering import resolve_locale

LANGS = ["en", "pt", "fr", "de", "es"]
REGIONS = ["BR", "PT", "FR", "CA", "US", "GB", "DE", "AO"]
tags = st.builds(
    lambda lang, region: lang if region is None else f"{lang}-{region}",
    st.sampled_from(LANGS),
    st.none() | st.sampled_from(REGIONS),
)


def test_another_region_of_the_language_wins_over_the_default():
    locales = {"en": {}, "pt-BR": {}, "fr-CA": {}}
    assert resolve_locale(locales, "en", "pt-PT") == "pt-BR"
    assert resolve_locale(locales, "en", "pt") == "pt-BR"
    assert resolve_locale(locales, "en", "fr-FR") == "fr-CA"
    assert resolve_locale(locales, "en", "pt_pt") == "pt-BR"
    assert resolve_locale(locales, "en", "de-DE") == "en"
    # The default locale is preferred among the language's regions; otherwise the choice is stable.
    assert resolve_locale({"pt-AO": {}, "pt-BR": {}, "en": {}}, "pt-BR", "pt-PT") == "pt-BR"
    assert resolve_locale({"pt-BR": {}, "pt-AO": {}, "en": {}}, "en", "pt-PT") == "pt-AO"


@given(st.lists(tags, min_size=1, max_size=6, unique=True), st.none() | tags)
def test_resolution_is_a_locale_of_the_template_and_keeps_the_language_when_it_can(keys, requested):
    locales = {k: {} for k in keys}
    default = keys[0]
    chosen = resolve_locale(locales, default, requested)
    assert chosen in locales
    if requested is None:
        assert chosen == default
        return
    if requested in locales:
        assert chosen == requested
    language = requested.split("-")[0]
    same_language = [k for k in keys if k.split("-")[0] == language]
    if same_language:
        assert chosen.split("-")[0] == language
        if language in locales and requested not in locales:
            assert chosen == language
    else:
        assert chosen == default
