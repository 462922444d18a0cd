"""The Serve deployment behind the orchestrator's ``run-slm-completion`` activity.

``POST /`` (under the application's route prefix) takes
``{prompt, model, session_id, max_tokens?}`` and answers
``{text, model, provider, prompt_tokens, completion_tokens}``; ``GET /healthz``
answers ``{status, provider, version, config_fingerprint}``. The provider is an OpenAI-compatible
upstream when the application's ``provider_url`` argument is set, otherwise a
deterministic responder, so a cluster without a model still answers
reproducibly and says so in ``provider``.
"""

import hashlib
import json
import os
import re
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import aiohttp
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from somagent_slm import __version__

BUILTIN_PROVIDER = "builtin-deterministic"
# The orchestrator contract's limit (StartRequest.prompt max_len in session.proto, in code points as
# len() counts them): a prompt the API accepts is never refused here.
MAX_PROMPT_CHARS = 32_768
MAX_TOKENS_LIMIT = 4096
DEFAULT_MAX_TOKENS = 256
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")

# Words the deterministic responder draws from; fixed, so answers never change.
_VOCABULARY = (
    "session", "policy", "agent", "tenant", "plan", "step", "review", "result",
    "context", "signal", "audit", "token", "answer", "summary", "draft", "check",
    "route", "model", "prompt", "record", "trace", "state", "task", "goal",
    "note", "source", "detail", "option", "update", "status", "limit", "scope",
)


class BadRequest(Exception):
    """The caller's request is malformed; the message names the field."""


class UpstreamError(Exception):
    """The upstream provider failed; ``status`` is what we answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_request(body: Any) -> Tuple[str, str, str, int]:
    """Validates a completion request; raises BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or prompt.strip() == "":
        raise BadRequest("prompt must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt must be at most {MAX_PROMPT_CHARS} characters")
    model = body.get("model")
    if not isinstance(model, str) or not MODEL_PATTERN.match(model):
        raise BadRequest(f"model must match {MODEL_PATTERN.pattern}")
    session_id = body.get("session_id")
    if not isinstance(session_id, str) or session_id == "" or len(session_id) > 200:
        raise BadRequest("session_id must be a non-empty string of at most 200 characters")
    max_tokens = body.get("max_tokens", DEFAULT_MAX_TOKENS)
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
        raise BadRequest(f"max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}")
    return prompt, model, session_id, max_tokens


def deterministic_completion(prompt: str, model: str, max_tokens: int) -> Dict[str, Any]:
    """A reproducible answer derived from SHA-256 of model and prompt.

    Token counts are whitespace-separated words, counted, not estimated.
    """
    digest = hashlib.sha256(f"{model}\n{prompt}".encode("utf-8")).digest()
    prompt_tokens = len(prompt.split())
    words = [f"[{digest.hex()[:12]}]"]
    words += [_VOCABULARY[b % len(_VOCABULARY)] for b in digest[: 8 + digest[0] % 17]]
    words = words[:max_tokens]
    return {
        "text": " ".join(words),
        "model": model,
        "provider": BUILTIN_PROVIDER,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(words),
    }


def chat_completions_url(base: str) -> str:
    """``base`` is the upstream root (``http://h:p``) or its ``/v1``."""
    base = base.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


@serve.deployment(
    num_replicas=1,
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=32,
    health_check_period_s=10,
)
class SlmCompletion:
    """One replica answering completions; see the module docstring."""

    def __init__(
        self,
        provider_url: Optional[str],
        provider_model: Optional[str],
        request_timeout_s: float,
        config_fingerprint: Optional[str],
    ):
        self._config_fingerprint = config_fingerprint
        self._provider_url = provider_url
        self._provider_model = provider_model
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        # The key travels in runtime_env.env_vars, never in args (args are shown by GET).
        self._api_key = os.environ.get("SLM_PROVIDER_API_KEY") or None
        self._session: Optional[aiohttp.ClientSession] = None
        if provider_url:
            parts = urlsplit(provider_url)
            self._provider = parts.hostname + (f":{parts.port}" if parts.port else "")
        else:
            self._provider = BUILTIN_PROVIDER

    async def __call__(self, request: Request) -> JSONResponse:
        root = request.scope.get("root_path", "")
        path = request.scope["path"][len(root):] if request.scope["path"].startswith(root) else request.scope["path"]
        path = path.rstrip("/") or "/"
        if path == "/healthz" and request.method == "GET":
            return JSONResponse(
                {
                    "status": "ok",
                    "provider": self._provider,
                    "version": __version__,
                    "config_fingerprint": self._config_fingerprint,
                }
            )
        if path != "/":
            return JSONResponse({"error": f"no route {path}"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        try:
            prompt, model, session_id, max_tokens = parse_request(body)
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        if not self._provider_url:
            return JSONResponse(deterministic_completion(prompt, model, max_tokens))
        try:
            return JSONResponse(await self._upstream(prompt, model, session_id, max_tokens))
        except UpstreamError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)

    async def _upstream(self, prompt: str, model: str, session_id: str, max_tokens: int) -> Dict[str, Any]:
        """Calls the OpenAI-compatible upstream.

        Unreachable, timeouts, 408/429/5xx answer 502/504 (worth a retry); other
        4xx answer 424, a failed dependency a retry will not fix.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        upstream_model = self._provider_model or model
        payload = {
            "model": upstream_model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "user": session_id,
        }
        try:
            async with self._session.post(chat_completions_url(self._provider_url), json=payload, headers=headers) as response:
                if response.status >= 400:
                    status = 502 if response.status in (408, 429) or response.status >= 500 else 424
                    raise UpstreamError(status, f"upstream {self._provider} answered {response.status}")
                answer = await response.json(content_type=None)
        except TimeoutError:
            raise UpstreamError(504, f"upstream {self._provider} did not answer in time") from None
        except aiohttp.ClientError as error:
            raise UpstreamError(502, f"upstream {self._provider} unreachable ({type(error).__name__})") from None
        try:
            text = answer["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError):
            raise UpstreamError(424, f"upstream {self._provider} answered without choices[0].message.content") from None
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        return {
            "text": text,
            "model": answer.get("model") if isinstance(answer.get("model"), str) else upstream_model,
            "provider": self._provider,
            # An upstream that reports no usage gets whitespace counts, as the builtin does.
            "prompt_tokens": prompt_tokens if isinstance(prompt_tokens, int) else len(prompt.split()),
            "completion_tokens": completion_tokens if isinstance(completion_tokens, int) else len(text.split()),
        }


def build(args: Dict[str, Any]) -> serve.Application:
    """Application builder for ``import_path: somagent_slm.app:build``.

    ``args``: ``provider_url`` (optional, OpenAI-compatible root),
    ``provider_model`` (optional, overrides the request's model upstream),
    ``request_timeout_s`` (default 30) and ``config_fingerprint`` (set by the
    orchestrator to recognise its own deployed version; ``/healthz`` echoes it,
    so the orchestrator knows when the proxy routes to the new replicas).
    """
    known = {"provider_url", "provider_model", "request_timeout_s", "config_fingerprint"}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"unknown application args: {sorted(unknown)}")
    provider_url = args.get("provider_url") or None
    if provider_url is not None and urlsplit(provider_url).scheme not in ("http", "https"):
        raise ValueError("provider_url must be an http(s) URL")
    return SlmCompletion.bind(
        provider_url,
        args.get("provider_model") or None,
        float(args.get("request_timeout_s", 30)),
        args.get("config_fingerprint"),
    )
