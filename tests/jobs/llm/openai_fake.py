"""A local HTTP server speaking OpenAI's `POST /v1/chat/completions`, answering from a script.

Each scripted reply is either a message content (wrapped in a chat.completion with usage) or a raw HTTP error.
Unscripted calls get `VALID_PROBLEM`. `calls` keeps each request body and when it arrived.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

VALID_PROBLEM: dict[str, Any] = {
    "body": "x^2 - 5x + 6 = 0 의 두 근의 합은?",
    "choices": ["1", "5", "6", "-5", "-6"],
    "answer": 2,
    "difficulty": "easy",
    "tags": ["이차방정식", "근과 계수의 관계"],
    "explanation": "근과 계수의 관계에 따라 두 근의 합은 -(-5)/1 = 5 입니다.",
}


@dataclass
class Completion:
    content: str | None
    refusal: str | None = None
    prompt_tokens: int = 120
    completion_tokens: int = 80


@dataclass
class HttpError:
    status: int
    error_type: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class OpenAIFake:
    def __init__(self) -> None:
        self.replies: deque[Completion | HttpError] = deque()
        self.calls: list[dict[str, Any]] = []
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        if request.path != "/v1/chat/completions":
            return error_response(HttpError(404, "invalid_request_error"))
        body = request.get_json()
        self.calls.append({"body": body, "at": time.monotonic(), "auth": request.headers.get("Authorization")})
        reply = self.replies.popleft() if self.replies else Completion(json.dumps(VALID_PROBLEM))
        if isinstance(reply, HttpError):
            return error_response(reply)
        return Response(json.dumps(completion_body(body["model"], reply)), 200, content_type="application/json")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def error_response(error: HttpError) -> Response:
    body = {"error": {"message": f"scripted {error.status}", "type": error.error_type, "code": error.code}}
    return Response(json.dumps(body), error.status, error.headers, content_type="application/json")


def completion_body(model: str, reply: Completion) -> dict[str, Any]:
    usage = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }
    message = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": f"{model}-2024-07-18",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
    }
