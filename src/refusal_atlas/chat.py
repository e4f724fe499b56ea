"""Chat formatting, truncation, left padding and position indices.

Every prompt becomes one user turn with the generation prompt appended, tokenised
without extra special tokens (the template already carries BOS where a model wants it),
truncated to its *last* ``max_tokens`` tokens, and left-padded in batches. Because the
ends line up, a negative position such as -2 names the same template token in every row.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .errors import UserError

TEMPLATE_SUFFIXES = (".jinja", ".j2", ".txt")


def read_chat_template(value: str) -> str:
    """The Jinja chat template a ``--chat-template`` value means: a file's text or a literal.

    A literal (it contains ``{%`` or ``{{``) is used as it is. Anything else must name a
    file: using the string itself as a template would turn every prompt into that string.
    Cheap and model-free, so it can check the option before anything runs.

    Raises:
        UserError: a file that does not exist, cannot be read or is not UTF-8, or a value
            that is neither a file nor a template.

    Example:
        >>> read_chat_template("{{ messages[0]['content'] }}")
        "{{ messages[0]['content'] }}"
    """
    if "{%" in value or "{{" in value:
        return value
    path = Path(value).expanduser()
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UserError(f"chat template file {path} is not UTF-8 text; save it as UTF-8 "
                            "and pass it again") from None
        except OSError as exc:
            raise UserError(f"cannot read chat template file {path} ({exc.strerror or exc})") \
                from None
    looks_like_path = (value.lower().endswith(TEMPLATE_SUFFIXES) or "/" in value
                       or os.sep in value or path.exists())
    if looks_like_path:
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise UserError(f"chat template file {path} {what}; pass an existing Jinja file or "
                        "the template text itself")
    raise UserError(f"chat template {value!r} is neither a file nor a Jinja template (it has "
                    "no '{%' or '{{'); pass a template file or the template text")


@dataclass
class EncodedBatch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]
    """Real (unpadded) length of each row."""

    @property
    def position_ids(self) -> torch.Tensor:
        return position_ids_from_mask(self.attention_mask)

    def to(self, device: torch.device | str) -> "EncodedBatch":
        return EncodedBatch(self.input_ids.to(device), self.attention_mask.to(device), self.lengths)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that start at 0 on each row's first real token, as ``generate`` computes them.

    Without this a left-padded row would see its RoPE positions shifted by its padding.
    """
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.clamp(min=0)


class ChatFormatter:
    """Turns raw prompts into token ids the way every refusal-atlas stage sees them: the
    model's chat template with the generation prompt, cut from the front to ``max_tokens``
    so the template's end (where position -2 reads) is always kept.

    Args:
        tokenizer: a tokenizer with a chat template.
        max_tokens: the most tokens a formatted prompt keeps.
        system_prompt: an optional system message before every prompt.

    Example:
        >>> fmt = ChatFormatter(lm.tokenizer)  # doctest: +SKIP
        >>> batch = fmt.batch(["How do I bake bread?", "Hi"])  # doctest: +SKIP
    """

    def __init__(self, tokenizer, *, max_tokens: int = 128, system_prompt: str | None = None):
        if max_tokens < 2:
            raise UserError(f"max prompt tokens must be at least 2, got {max_tokens}")
        if not getattr(tokenizer, "chat_template", None):
            raise UserError("the tokenizer has no chat template; pass --chat-template FILE")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.system_prompt = system_prompt
        self._cache: dict[str, list[int]] = {}

    def messages(self, prompt: str) -> list[dict[str, str]]:
        msgs = [{"role": "user", "content": prompt}]
        if self.system_prompt is not None:
            msgs.insert(0, {"role": "system", "content": self.system_prompt})
        return msgs

    def format(self, prompt: str) -> str:
        try:
            return self.tokenizer.apply_chat_template(
                self.messages(prompt), tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # jinja raises TemplateError subclasses with the template's text
            raise UserError(f"the chat template could not format a prompt: {exc}") from None

    def encode(self, prompt: str) -> list[int]:
        ids = self._cache.get(prompt)
        if ids is None:
            ids = self.tokenizer(self.format(prompt), add_special_tokens=False)["input_ids"]
            ids = ids[-self.max_tokens:]
            self._cache[prompt] = ids
        return ids

    def batch(self, prompts: Sequence[str]) -> EncodedBatch:
        return pad_left([self.encode(p) for p in prompts], self.pad_id)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.tokenizer.eos_token_id)

    def prompt_key(self, prompt: str) -> str:
        """Hash of the exact token ids fed to the model (after template and truncation)."""
        return token_key(self.encode(prompt))

    def describe(self) -> dict:
        return {"max_tokens": self.max_tokens, "system_prompt": self.system_prompt,
                "template_sha256": hashlib.sha256(
                    str(self.tokenizer.chat_template).encode()).hexdigest()[:12]}


def token_key(ids: Sequence[int]) -> str:
    return hashlib.sha256(torch.tensor(list(ids), dtype=torch.int64).numpy().tobytes()).hexdigest()[:24]


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int) -> EncodedBatch:
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if len(seq):
            ids[row, width - len(seq):] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return EncodedBatch(ids, mask, [len(s) for s in sequences])


def resolve_position(position: int, lengths: Sequence[int], width: int) -> int:
    """Absolute column in a left-padded batch for a position counted from the end.

    Positions are negative (-1 = last token). The index must fall inside every row's real
    tokens, or some row would read padding.
    """
    if position >= 0:
        raise UserError(f"positions are counted from the end and must be negative, got {position}")
    shortest = min(lengths)
    if -position > shortest:
        raise UserError(f"position {position} reaches before the start of a {shortest}-token prompt")
    return width + position


def template_suffix(formatter: ChatFormatter, n: int = 6) -> list[str]:
    """The last ``n`` tokens shared by every formatted prompt, for explaining positions."""
    ids = formatter.tokenizer(formatter.format("x"), add_special_tokens=False)["input_ids"]
    return [formatter.tokenizer.decode([t]) for t in ids[-n:]]
