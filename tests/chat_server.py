"""A local OpenAI-compatible chat-completions server for tests (stdlib, one thread per request).

Answers are derived from the request, so they are deterministic and checkable:
- a request with an image (a caption): ``"scene <sha256(image bytes)[:10]>"``;
- a text request (a refinement): :func:`refined` of the user message, plus ``long_reply_words``
  filler words when set.
Failure modes (set the attributes between runs): ``fail_first`` requests answer ``fail_status``
(with ``retry_after`` as Retry-After when set); ``slow_first`` requests sleep ``slow_s`` first;
``status_always`` answers every request with that status (the body echoes the Authorization
header, so a client that does not redact it leaks the key); ``fail_new_images`` makes the first
N distinct images fail with 500 for good (their hashes in ``failed_images``).
Every request is recorded in ``requests``: kind ("caption" or "refine"), headers, body, image hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def refined(caption: str) -> str:
    return f"A dark view of {caption} gradually brightens. Nothing moves."


class ChatServer:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reset(self) -> None:
        """Forget the requests and every failure mode."""
        with self.lock:
            self.requests: list[dict] = []
            self.fail_first, self.fail_status, self.retry_after = 0, 500, None
            self.slow_first, self.slow_s = 0, 0.0
            self.status_always = None
            self.fail_new_images, self.failed_images = 0, set()
            self.long_reply_words = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def count(self, kind: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if kind is None or r["kind"] == kind)

    def images(self) -> list[str]:
        with self.lock:
            return [r["image"] for r in self.requests if r["kind"] == "caption"]

    def start(self) -> ChatServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, body: dict, headers: dict) -> tuple[int, dict, dict]:
        """(status, extra headers, JSON body) of one request; records it."""
        content = body["messages"][-1]["content"]
        image = None
        if isinstance(content, list):
            url = next(p["image_url"]["url"] for p in content if p.get("type") == "image_url")
            image = hashlib.sha256(base64.b64decode(url.split(",", 1)[1])).hexdigest()
        with self.lock:
            number = len(self.requests)
            kind = "caption" if image else "refine"
            self.requests.append({"kind": kind, "image": image, "body": body, "headers": headers})
            slow = number < self.slow_first
            if self.status_always:
                return self.status_always, {}, {}
            if number < self.fail_first:
                headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
                return self.fail_status, headers, {"error": {"message": "try again later"}}
            if image and (image in self.failed_images or len(self.failed_images) < self.fail_new_images):
                self.failed_images.add(image)
                return 500, {}, {"error": {"message": "this image always fails"}}
            long_words = self.long_reply_words
        if slow:
            time.sleep(self.slow_s)
        text = f"scene {image[:10]}" if image else refined(content)
        if long_words:
            text += " " + " ".join(f"word{i}" for i in range(long_words))
        return 200, {}, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, headers, payload = server._answer(body, dict(self.headers))
                if status in (401, 403):
                    auth = self.headers.get("Authorization", "")
                    payload = {"error": {"message": f"invalid credentials: {auth}"}}
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        return Handler
