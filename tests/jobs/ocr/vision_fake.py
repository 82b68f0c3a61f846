"""A local HTTP server speaking the Google Vision REST API (`POST /v1/images:annotate`) and an OAuth token endpoint.

Tests script its answers (`replies`), then read what the real client sent (`calls`). Unscripted calls get a
successful document-text answer built from `text_blocks`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer late, to exercise the client's deadline


def document_answer(blocks: list[tuple[str, tuple[int, int, int, int], float]]) -> dict[str, Any]:
    """A Vision `fullTextAnnotation` with one block per (text, (x0, y0, x1, y1), confidence), words split on spaces."""
    out_blocks = []
    for text, (x0, y0, x1, y1), conf in blocks:
        words = []
        for i, word in enumerate(text.split(" ")):
            symbols = [{"text": ch} for ch in word]
            symbols[-1]["property"] = {
                "detectedBreak": {"type": "SPACE" if i < len(text.split(" ")) - 1 else "LINE_BREAK"}
            }
            words.append({"symbols": symbols, "confidence": conf})
        vertices = [{"x": x0, "y": y0}, {"x": x1, "y": y0}, {"x": x1, "y": y1}, {"x": x0, "y": y1}]
        if x0 == 0 and y0 == 0:
            vertices[0] = {}  # Vision omits zero coordinates, as proto3 JSON does
        out_blocks.append({"boundingBox": {"vertices": vertices}, "confidence": conf, "paragraphs": [{"words": words}]})
    full = "\n".join(t for t, _, _ in blocks) + ("\n" if blocks else "")
    annotation = {"text": full, "pages": [{"width": 1000, "height": 1000, "blocks": out_blocks}]} if blocks else {}
    response: dict[str, Any] = {"fullTextAnnotation": annotation} if annotation else {}
    if blocks:
        response["textAnnotations"] = [{"description": full, "locale": "ko"}]
    return {"responses": [response]}


def error_reply(status: int, grpc_status: str, message: str, reason: str | None = None) -> Reply:
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    return Reply(status, {"error": error})


class VisionFake:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.calls: list[dict[str, Any]] = []
        self.token_requests = 0
        self.text_blocks: list[tuple[str, tuple[int, int, int, int], float]] = [
            ("안녕하세요 학생", (10, 20, 210, 60), 0.98),
            ("2 + 3 = 5", (0, 0, 100, 40), 0.80),
        ]
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        if request.path == "/token":
            self.token_requests += 1
            reply = Reply(200, {"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"})
        elif request.path == "/v1/images:annotate":
            self.calls.append({"body": request.get_json(), "authorization": request.headers.get("Authorization")})
            reply = self.replies.popleft() if self.replies else Reply(200, document_answer(self.text_blocks))
            time.sleep(reply.delay_s)
        else:
            reply = Reply(404, {"error": {"code": 404, "message": request.path, "status": "NOT_FOUND"}})
        return Response(json.dumps(reply.body), reply.status, reply.headers, content_type="application/json")

    def sent_image(self, call: int = -1) -> bytes:
        return base64.b64decode(self.calls[call]["body"]["requests"][0]["image"]["content"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
