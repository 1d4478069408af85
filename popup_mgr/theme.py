"""The popup's look: Mode's brand defaults, overridden per property by its `theme` JSON."""
import json
import re

DEFAULT_THEME = {
    "primary": "#d6246e",      # Mode pink: CTA button, accents
    "accent": "#1f5fbf",       # Mode blue: links, focus ring, dots
    "background": "#ffffff",
    "text": "#1b1f24",
    "cta_text": "#ffffff",
    "logo_url": "",
}
COLOR_KEYS = ("primary", "accent", "background", "text", "cta_text")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def merged_theme(theme_json):
    """The defaults with a property's stored overrides applied (unknown keys are ignored)."""
    try:
        overrides = json.loads(theme_json or "{}")
    except ValueError:
        overrides = {}
    if not isinstance(overrides, dict):
        overrides = {}
    theme = dict(DEFAULT_THEME)
    for key, value in overrides.items():
        if key in DEFAULT_THEME and isinstance(value, str):
            theme[key] = value
    return theme


def theme_problems(theme):
    """{key: message} for values that cannot be used (colours must be #rrggbb)."""
    problems = {}
    for key in COLOR_KEYS:
        if key in theme and not _COLOR.fullmatch(theme[key] or ""):
            problems[key] = "Use a colour like #d6246e."
    return problems
