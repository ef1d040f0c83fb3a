"""Local tools: schemas from type hints and docstrings, argument decoding, results as strings."""

from __future__ import annotations

import threading

import msgspec
import pytest

from mistral_conv import InvalidRequestError, LocalTool, tool
from mistral_conv._tools import ToolArgumentsError


class Place(msgspec.Struct):
    city: str
    country: str = "FR"


def forecast(place: Place, days: int = 1, unit: str = "C") -> list[dict[str, object]]:
    """The forecast for a place.

    Longer text is not part of the summary sentence's line.

    Args:
        place: Where to look.
        days: How many days ahead,
            counting from today.
        unit (str): C or F.

    Returns:
        One item per day.
    """
    return [{"city": place.city, "day": d, "unit": unit} for d in range(days)]


def test_the_schema_comes_from_hints_and_docstring() -> None:
    t = LocalTool(forecast)
    assert t.name == "forecast" and t.description.startswith("The forecast for a place.")
    params = t.parameters
    assert params["type"] == "object" and params["required"] == ["place"]
    assert params["additionalProperties"] is False
    assert params["properties"]["days"] == {
        "type": "integer",
        "default": 1,
        "description": "How many days ahead, counting from today.",
    }
    assert params["properties"]["unit"]["description"] == "C or F."
    assert params["properties"]["place"]["$ref"] == "#/$defs/Place"
    assert params["$defs"]["Place"]["required"] == ["city"]
    assert "title" not in str(params)
    definition = t.definition
    assert definition.function.strict is True and definition.function.name == "forecast"


async def test_arguments_decode_into_structs_and_results_become_strings() -> None:
    t = LocalTool(forecast)
    out = await t.invoke('{"place": {"city": "Lyon"}, "days": 2}')
    assert msgspec.json.decode(out) == [
        {"city": "Lyon", "day": 0, "unit": "C"},
        {"city": "Lyon", "day": 1, "unit": "C"},
    ]
    assert t.arguments({"place": {"city": "Nice"}})["place"] == Place(city="Nice")
    with pytest.raises(ToolArgumentsError, match="Expected `int`"):
        t.arguments('{"place": {"city": "Lyon"}, "days": "two"}')
    with pytest.raises(ToolArgumentsError, match="unknown field"):
        t.arguments('{"place": {"city": "Lyon"}, "weeks": 2}')


async def test_sync_tools_run_off_the_calling_thread_and_strings_pass_as_is() -> None:
    seen: list[int] = []

    @tool(name="who-am-i", requires_confirmation=True, timeout=3)
    def whoami() -> str:
        seen.append(threading.get_ident())
        return "a plain string"

    assert isinstance(whoami, LocalTool) and whoami.requires_confirmation and whoami.timeout == 3
    assert whoami() == "a plain string"  # still callable as the function
    assert await whoami.invoke("") == "a plain string"
    assert seen[-1] != threading.get_ident()


def test_functions_that_cannot_be_tools_are_refused() -> None:
    def star(*args: int) -> int:
        return 0

    with pytest.raises(InvalidRequestError, match="plain keyword"):
        LocalTool(star)
    with pytest.raises(InvalidRequestError, match="letters, digits"):
        LocalTool(forecast, name="has space")


def test_a_plain_function_becomes_its_tool_once() -> None:
    from mistral_conv._tools import as_tool

    def ping(host: str) -> str:
        return host

    assert as_tool(ping) is as_tool(ping) and as_tool(ping).name == "ping"
