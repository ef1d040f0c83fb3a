"""The public surface as help(), IDEs and type checkers see it: explicit, documented, the same twice."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import mistral_conv
from mistral_conv import (
    AsyncConversationsClient,
    ConversationsClient,
    InvalidRequestError,
    _client,
    _codegen,
    _spec,
    _sse,
)
from mistral_conv import models as mc_models
from mistral_conv.models.requests import AppendRequest, RestartRequest, StartRequest

PUBLIC = sorted(
    name
    for name, value in vars(AsyncConversationsClient).items()
    if (not name.startswith("_") and callable(value)) or name == "__init__"
)


def test_the_generated_clients_are_what_the_table_gives() -> None:
    assert _codegen.TARGET.read_text(encoding="utf-8") == _codegen.render(), (
        "_api.py is out of date: run python mistral_conv/_codegen.py"
    )
    assert _codegen.SYNC_TARGET.read_text(encoding="utf-8") == _codegen.render_sync(), (
        "_sync_api.py is out of date: run python mistral_conv/_codegen.py"
    )


def test_every_public_method_is_generated_from_the_table() -> None:
    assert set(PUBLIC) == {m.name for m in _spec.METHODS} | {"__init__"}
    assert {n for n, v in vars(ConversationsClient).items() if callable(v) and not n.startswith("_")} == {
        m.name for m in _spec.METHODS
    }


@pytest.mark.parametrize("name", PUBLIC)
def test_signature_names_every_parameter_and_both_clients_agree(name: str) -> None:
    a = inspect.signature(getattr(AsyncConversationsClient, name))
    s = inspect.signature(getattr(ConversationsClient, name))
    for sig in (a, s):
        kinds = {p.kind for p in sig.parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds
        assert all(
            p.annotation is not inspect.Parameter.empty for p in sig.parameters.values() if p.name != "self"
        )
    assert list(a.parameters.values()) == list(s.parameters.values())
    # every parameter is documented where help() shows it
    for doc in (getattr(AsyncConversationsClient, name).__doc__, getattr(ConversationsClient, name).__doc__):
        assert doc is not None
        for param in a.parameters:
            if param != "self":
                assert f"    {param}: " in doc, (name, param)


@pytest.mark.parametrize("name", PUBLIC)
def test_annotations_resolve(name: str) -> None:
    # The models, streams, run layer and dict types load lazily, so their names are not in _api's
    # globals until asked for; every annotation resolves with the public modules' names.
    import mistral_conv.types

    names = {n: getattr(mistral_conv, n) for n in mistral_conv.__all__}
    names |= {n: getattr(mistral_conv.models, n) for n in mistral_conv.models.__all__}
    names |= {n: getattr(mistral_conv.types, n) for n in mistral_conv.types.__all__}
    from opentelemetry.trace import TracerProvider  # tracer_provider's type, from the otel extra

    names["TracerProvider"] = TracerProvider
    for cls in (AsyncConversationsClient, ConversationsClient):
        hints = typing.get_type_hints(getattr(cls, name), localns=names)
        assert "return" in hints


@pytest.mark.parametrize(
    ("method", "model"),
    [("start", StartRequest), ("append", AppendRequest), ("restart", RestartRequest)],
)
def test_body_parameters_are_the_request_models_fields(method: str, model: type[msgspec.Struct]) -> None:
    spec = next(m for m in _spec.METHODS if m.name == method)
    fields = {f.name for f in msgspec.structs.fields(model)} - {"stream"}
    assert {p.name for p in spec.fields} == fields
    stream = next(m for m in _spec.METHODS if m.name == f"{method}_stream")
    assert stream.params == spec.params


def test_client_defaults_are_the_runtime_constants() -> None:
    defaults = {p.name: p.default for p in _spec.CLIENT}
    assert eval(defaults["max_event_size"]) == _sse.DEFAULT_MAX_EVENT_SIZE
    assert eval(defaults["max_response_size"]) == _client.DEFAULT_MAX_BODY
    assert eval(defaults["max_stream_size"]) == _client.DEFAULT_MAX_STREAM_SIZE


def _call(client: Any, name: str, **kwargs: Any) -> Callable[[], Any]:
    return lambda: getattr(client, name)(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field", "hint"),
    [
        ({"modle": "m"}, "modle", "did you mean 'model'?"),
        ({"temperature": 0.2}, "temperature", "completion_args={'temperature': ...}"),
        ({"max_retry": 1}, "max_retry", "did you mean 'max_retries'?"),
    ],
)
def test_misspelt_keywords_say_what_was_meant(kwargs: dict[str, Any], field: str, hint: str) -> None:
    with ConversationsClient(api_key="k", base_url="http://127.0.0.1:9") as client:
        for call in (
            lambda: client.start(inputs="hi", model="m", **kwargs),
            lambda: client.async_client.start_stream(inputs="hi", model="m", **kwargs),
            lambda: client.start_stream(inputs="hi", model="m", **kwargs),
        ):
            with pytest.raises(InvalidRequestError) as err:
                call()
            assert err.value.field == field and hint in str(err.value)
    with pytest.raises(InvalidRequestError, match="did you mean 'base_url'"):
        AsyncConversationsClient(api_key="k", base_ulr="http://127.0.0.1:9")  # type: ignore[call-arg]


def test_positional_misuse_stays_a_type_error() -> None:
    with (
        ConversationsClient(api_key="k", base_url="http://127.0.0.1:9") as client,
        pytest.raises(TypeError, match="positional"),
    ):
        client.start("hi")  # type: ignore[misc]


async def test_awaiting_a_stream_says_how_to_use_it() -> None:
    async with AsyncConversationsClient(api_key="k", base_url="http://127.0.0.1:9") as client:
        stream = client.start_stream(inputs="hi", model="m")
        with pytest.raises(TypeError, match=r"async with client\.start_stream"):
            await stream  # type: ignore[misc]
        await stream.aclose()


def test_top_level_namespace_holds_no_plumbing() -> None:
    names = set(mistral_conv.__all__)
    assert not names & {"SSEDecoder", "SSEFrame", "Transport", "StreamState", "accumulate", "StreamEvent"}
    assert {"AsyncConversationsClient", "ConversationsClient", "ConversationEvent", "ResponseInfo"} <= names
    assert not set(mistral_conv.models.__all__) & {"UNKNOWN_TAG", "ModelDecoder", "StartRequest"}
    for name in names - {"__version__", "models"}:
        assert getattr(mistral_conv, name).__doc__, name


async def test_every_result_carries_its_request_id(mistral_client: AsyncConversationsClient) -> None:
    first = await mistral_client.start(inputs="hi", model="m")
    history = await mistral_client.history(first.conversation_id)
    page = await mistral_client.list()
    got = await mistral_client.get(first.conversation_id)
    async with mistral_client.append_stream(first.conversation_id, inputs="more") as stream:
        await stream.final_response()
    deleted = await mistral_client.delete(first.conversation_id)
    ids = [first.request_id, history.request_id, page.request_id, got.request_id, stream.request_id]
    ids.append(deleted.request_id)
    assert all(i and i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)
    assert first.raw_response is not None and first.raw_response.status == 200
    assert first.raw_response.headers["X-Request-ID"] == first.request_id
    assert stream.raw_response is not None and stream.raw_response.headers["content-type"].startswith(
        "text/event-stream"
    )
    assert deleted.status == 204 and page[0].request_id == page.request_id
    # a result built by hand has none, and the HTTP answer is not part of the model
    assert mc_models.ConversationHistory(conversation_id="c", entries=[]).request_id is None
    assert b"request" not in msgspec.json.encode(history)


def test_async_methods_stay_coroutine_functions_for_inspect_and_mocks() -> None:
    from unittest import mock

    for m in _spec.METHODS:
        method = getattr(AsyncConversationsClient, m.name)
        assert inspect.iscoroutinefunction(method) == (m.kind not in ("stream", "iterate", "handle")), m.name
    fake = mock.create_autospec(AsyncConversationsClient, instance=True)
    assert isinstance(fake.start, mock.AsyncMock)


async def test_a_streams_final_response_carries_the_request_id(
    mistral_client: AsyncConversationsClient,
) -> None:
    async with mistral_client.start_stream(inputs="hi", model="m") as stream:
        final = await stream.final_response()
    assert final.request_id is not None and final.request_id == stream.request_id


def test_importing_the_package_leaves_the_run_layer_unloaded_until_used() -> None:
    import subprocess
    import sys

    layer = ("mistral_conv._runs", "mistral_conv._tools", "mistral_conv.types", "mistral_conv._batch")
    code = f"import sys, mistral_conv; print([m for m in {layer!r} if m in sys.modules]); mistral_conv.tool"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_making_a_client_loads_no_model_stream_or_telemetry() -> None:
    import subprocess
    import sys

    unloaded = (
        "[m for m in sys.modules if m.startswith('mistral_conv.models') or m in ('difflib', "
        "'mistral_conv._streaming', 'mistral_conv._telemetry', 'mistral_conv._events'{})]"
    )
    sync_layer = ", 'mistral_conv._sync', 'mistral_conv._sync_api'"  # until a blocking client is made
    code = (
        "import sys, mistral_conv; mistral_conv.AsyncConversationsClient('k'); "
        f"print({unloaded.format(sync_layer)}); "
        "mistral_conv.ConversationsClient('k').close(); "
        f"print({unloaded.format('')})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.split() == ["[]", "[]"], done.stdout + done.stderr
    # what was put off is still there by name
    code = (
        "import mistral_conv as m; "
        "print(set(m.__all__) <= set(dir(m)), all(hasattr(m, n) for n in m.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True True", done.stdout + done.stderr
