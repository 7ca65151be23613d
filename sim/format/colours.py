"""Colours a scenario may give its outcomes: a CSS named colour or `#rrggbb`.

Both are understood alike by browsers (the HTML report) and by matplotlib (the charts): the 148
CSS named colours are exactly matplotlib's `CSS4_COLORS`, and neither needs importing here.
"""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

from sim.errors import did_you_mean

_NAMES = """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue blueviolet
    brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk crimson cyan
    darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki darkmagenta darkolivegreen
    darkorange darkorchid darkred darksalmon darkseagreen darkslateblue darkslategray darkslategrey
    darkturquoise darkviolet deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite
    forestgreen fuchsia gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew
    hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon lightblue
    lightcoral lightcyan lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon
    lightseagreen lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime
    limegreen linen magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple
    mediumseagreen mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue
    mintcream mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid
    palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen
    seashell sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan teal
    thistle tomato turquoise violet wheat white whitesmoke yellow yellowgreen
"""
CSS_COLOURS = frozenset(_NAMES.split())
"""The CSS named colours (CSS Color Module Level 4), the same 148 as matplotlib's CSS4_COLORS."""

HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")


def is_colour(text: str) -> bool:
    """Whether `text` is a CSS named colour (any case) or `#rrggbb`."""
    return bool(HEX.match(text)) or text.lower() in CSS_COLOURS


def check_colour(value: object) -> object:
    """Pydantic validator of an outcome's `colour`: the value unchanged, or a clear error."""
    if not isinstance(value, str) or is_colour(value):
        return value  # a non-string is left to the `str` type's own error
    if value.startswith("#"):
        raise PydanticCustomError(
            "colour",
            "colour '{value}' is not of the form #rrggbb (six hex digits)",
            {"value": value},
        )
    raise PydanticCustomError(
        "colour",
        "unknown colour '{value}'{hint}; use a CSS colour name (e.g. firebrick, steelblue) or "
        "#rrggbb",
        {"value": value, "hint": did_you_mean(value.lower(), sorted(CSS_COLOURS))},
    )
