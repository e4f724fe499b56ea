"""The refusal styles and the label a classifier gives one response.

Every response gets one of :data:`STYLES`:

* ``CAPABILITY`` - framed around what the model is or cannot do (an AI, no body, no
  feelings, no real-time or physical access);
* ``SAFETY`` - framed around the request being harmful, illegal, unethical, dangerous or
  against the model's guidelines;
* ``UNDERSPEC`` - framed around not understanding the request or needing clarification;
* ``GENERIC`` - a refusal that gives none of those reasons;
* ``NONREFUSAL`` - not a refusal (compliance, partial compliance, off-topic or
  incoherent text).

When a response mixes framings, the primary one (the first stated) wins, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REFUSAL_STYLES", "STYLES", "UNPARSED", "StyleLabel"]

#: The five refusal styles (four refusal framings and NONREFUSAL).
STYLES: tuple[str, ...] = ("CAPABILITY", "SAFETY", "UNDERSPEC", "GENERIC", "NONREFUSAL")
#: The styles that count as refusals (dominance and purity are computed among these).
REFUSAL_STYLES: tuple[str, ...] = ("CAPABILITY", "SAFETY", "UNDERSPEC", "GENERIC")
#: Label of a response an LLM classifier gave no valid label for (not a style).
UNPARSED = "UNPARSED"


@dataclass(frozen=True)
class StyleLabel:
    """A style, the evidence for it (matched cue or the LLM's output line) and who said so."""

    style: str
    evidence: str
    classifier: str

    def to_dict(self) -> dict[str, str]:
        return {"style": self.style, "evidence": self.evidence, "classifier": self.classifier}

