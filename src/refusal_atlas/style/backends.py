"""Chat backends for the LLM style classifier: a local Hugging Face model or any
OpenAI-compatible endpoint. Each declares its options as a ``Settings`` model."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..errors import UserError
from ..hf import load_causal_lm, load_tokenizer

__all__ = ["BackendSettings", "ChatBackend", "HFChatBackend", "OpenAICompatBackend"]


class BackendSettings(BaseModel):
    """Base of a chat backend's ``Settings``: its constructor's options, nothing else."""

    model_config = ConfigDict(extra="forbid")


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model answering one user message, greedily."""

    name: str

    def complete(self, prompt: str, max_tokens: int) -> str: ...


def _messages(system_prompt: str | None, prompt: str) -> list[dict[str, str]]:
    """One user turn, after a system turn when there is a system prompt."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*system, {"role": "user", "content": prompt}]


class HFChatBackend:
    """A local (or hub) Hugging Face chat model, via its chat template, greedy decoding.

    Loaded on first use. ``device`` defaults to CUDA when available, else CPU; ``dtype``
    to bfloat16 on CUDA and float32 on CPU. ``system_prompt`` adds a system turn.

    Args:
        model_name_or_path: hub id or local folder of a chat model.
        device, dtype: where and in which precision it runs.
        max_new_tokens: answer length (default: what the classifier asks for).
        system_prompt: an optional system turn.
        local_files_only: never reach the hub.

    Example:
        >>> LLMStyleClassifier(HFChatBackend("Qwen/Qwen2.5-7B-Instruct")).classify(responses)  # doctest: +SKIP
    """

    class Settings(BackendSettings):
        """The local Hugging Face backend's options."""

        model_name_or_path: str
        device: str | None = None
        dtype: str | None = None
        max_new_tokens: int | None = None
        system_prompt: str | None = None
        local_files_only: bool = False

    def __init__(
        self,
        model_name_or_path: str,
        device: str | None = None,
        dtype: str | None = None,
        max_new_tokens: int | None = None,
        system_prompt: str | None = None,
        local_files_only: bool = False,
    ):
        self.model_name_or_path = str(model_name_or_path)
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.system_prompt = system_prompt
        self.local_files_only = local_files_only
        self.name = f"hf:{Path(self.model_name_or_path).name or self.model_name_or_path}"
        self._tokenizer = None
        self._model = None

    def _load(self) -> None:
        if self._model is not None:
            return
        error = f"Cannot load the style-classifier chat model {self.model_name_or_path!r}"
        tok = load_tokenizer(self.model_name_or_path, error=error,
                             local_files_only=self.local_files_only)
        if not getattr(tok, "chat_template", None):
            raise UserError(
                f"The model {self.model_name_or_path!r} has no chat template; use a chat model."
            )
        self._tokenizer, self._model = load_causal_lm(
            self.model_name_or_path, dtype=self.dtype, device=self.device, tokenizer=tok,
            error=error, local_files_only=self.local_files_only)

    def complete(self, prompt: str, max_tokens: int) -> str:
        import torch  # heavy; only a local backend needs it

        self._load()
        tok, model = self._tokenizer, self._model
        messages = _messages(self.system_prompt, prompt)
        text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
        device = next(model.parameters()).device
        input_ids = enc["input_ids"].to(device)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=self.max_new_tokens or max_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return tok.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)


class OpenAICompatBackend:
    """Any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp ...).

    POSTs ``{base_url}/chat/completions`` with ``temperature=0``. The API key is read from
    the environment variable ``api_key_env`` at call time and sent as a Bearer token; if
    the variable is unset (e.g. a local server), no key is sent. Uses only the standard
    library (urllib).

    Args:
        base_url: the API root, e.g. ``http://localhost:8000/v1``.
        model: the model name to ask for.
        api_key_env: the environment variable holding the API key (``None``: no key).
        timeout: seconds per request.
        max_tokens: answer length (default: what the classifier asks for).
        system_prompt: an optional system turn.

    Example:
        >>> backend = OpenAICompatBackend("http://localhost:8000/v1", "qwen2.5-7b-instruct")  # doctest: +SKIP
        >>> LLMStyleClassifier(backend).classify(["I'm sorry, that is illegal."])  # doctest: +SKIP
    """

    class Settings(BackendSettings):
        """The OpenAI-compatible backend's options."""

        base_url: str
        model: str
        api_key_env: str | None = "OPENAI_API_KEY"
        timeout: float = 120.0
        max_tokens: int | None = None
        system_prompt: str | None = None

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_tokens: int | None = None,
        system_prompt: str | None = None,
    ):
        if not base_url:
            raise UserError(
                "The OpenAI-compatible backend needs a base_url (e.g. http://localhost:8000/v1)."
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self.name = f"openai:{model}"

    def complete(self, prompt: str, max_tokens: int) -> str:
        url = f"{self.base_url}/chat/completions"
        messages = _messages(self.system_prompt, prompt)
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": self.max_tokens or max_tokens,
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                payload = resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = ""
            try:
                detail = exc.read().decode("utf-8", "replace").strip().replace("\n", " ")[:200]
            except OSError:
                pass
            raise UserError(
                f"The style-classifier endpoint {url} answered HTTP {exc.code}"
                + (f": {detail}" if detail else "")
                + (
                    f" (is {self.api_key_env} set to a valid key?)"
                    if exc.code in (401, 403) and self.api_key_env
                    else ""
                )
                + "."
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(f"Cannot reach the style-classifier endpoint {url}: {reason}.") from exc
        try:
            data = json.loads(payload)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UserError(
                f"The style-classifier endpoint {url} did not return a chat completion."
            ) from exc
        return content or ""

