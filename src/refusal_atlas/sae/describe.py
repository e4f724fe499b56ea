"""Text about a latent analysis for people: the console summary and the labelling sheet."""

from __future__ import annotations

from .analysis import LatentAnalysis


def describe_analysis(result: LatentAnalysis, *, n_core: int = 5, n_examples: int = 2) -> str:
    """A few lines for the console: distinct top latents, core and tail sizes per K, and the
    first core latents with their top-activating prompts."""
    k = result.core_k
    s = result.summary()
    lines = [f"top-{k} latents of {len(result.splits)} splits: "
             f"{s['distinct_top_latents'][str(k)]} distinct; shared core (>= "
             f"{result.core_min_splits} splits) {s['core_size'][str(k)]}, long tail (one split) "
             f"{s['tail_size'][str(k)]}"]
    for kk in result.ks:
        if kk != k:
            lines.append(f"  top-{kk}: core {s['core_size'][str(kk)]}, tail "
                         f"{s['tail_size'][str(kk)]}")
    for j in result.core[k][:n_core]:
        pops = result.popularity[k][j]
        ex = "; ".join(f"[{e['label']} {e['split']}] {e['text'][:70]}"
                       for e in result.examples.get(j, [])[:n_examples])
        lines.append(f"  core latent {j} ({len(pops)} splits): {ex}")
    return "\n".join(lines)


def latents_markdown(result: LatentAnalysis, *, max_core: int = 20, max_tail: int = 3) -> str:
    """A human-readable sheet for labelling: core latents, then each split's top tail latents,
    each with its scores and top-activating prompts."""
    k = result.core_k
    lines = [f"# SAE latents carrying refusal (top-{k}, core = in >= {result.core_min_splits} "
             f"of {len(result.splits)} splits)", ""]
    s = result.summary()
    lines.append(f"core: {s['core_size'][str(k)]} latents; tail: {s['tail_size'][str(k)]}; "
                 f"shared (2..{result.core_min_splits - 1} splits): {s['shared_size'][str(k)]}")
    lines.append("")

    def block(j: int, heading: str) -> None:
        info = result.latent_info.get(j, {})
        lines.append(f"## {heading} latent {j}")
        if info.get("neuronpedia"):
            lines.append(f"[Neuronpedia]({info['neuronpedia']})")
        pops = result.popularity[k].get(j, [])
        lines.append(f"in the top-{k} of {len(pops)} splits: {', '.join(pops) or '-'}")
        if info.get("score"):
            best = sorted(info["score"].items(), key=lambda kv: -kv[1])[:4]
            lines.append("score (HR - BC firing): " + ", ".join(f"{a} {b:+.2f}" for a, b in best))
        for ex in result.examples.get(j, []):
            lines.append(f"- {ex['activation']:.2f} [{ex['label'] or '?'} {ex['split']}] "
                         f"{ex['text']}")
        lines.append("")

    for j in result.core[k][:max_core]:
        block(j, "core")
    for split in result.splits:
        for j in result.tail[k].get(split, [])[:max_tail]:
            if j in result.examples:
                block(j, f"tail ({split})")
    return "\n".join(lines) + "\n"


__all__ = ["describe_analysis", "latents_markdown"]
