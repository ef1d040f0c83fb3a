"""The blocking client, for scripts and sync web frameworks.

Offline by default (a local server on a background thread); set MISTRAL_API_KEY for the real API.
    python examples/blocking.py
"""

from __future__ import annotations

import os

from mistral_conv import ConversationsClient
from mistral_conv.testing import LocalConversationsServer


def main() -> None:
    server = None
    if os.environ.get("MISTRAL_API_KEY"):
        client = ConversationsClient()
    else:
        server = LocalConversationsServer()
        server.start_in_thread()
        client = ConversationsClient("local", base_url=server.url)
    with client:
        reply = client.start(model="mistral-medium-latest", inputs="Say hello in Italian.")
        print("assistant:", reply.output_text)
        with client.append_stream(reply.conversation_id, inputs="And in Spanish?") as stream:
            print("assistant: ", end="")
            for text in stream.text_stream():
                print(text, end="", flush=True)
        print()
    if server is not None:
        server.stop_thread()


if __name__ == "__main__":
    main()
