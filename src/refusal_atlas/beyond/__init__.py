"""Experiments past the paper's method (issue 14): style vs rate, the refusal subspace,
tail latents, layer robustness and output-free direction selection.

Each experiment is library code here (models, prompts, tensors in; results out) and one
pipeline stage; each states its result as :class:`~.findings.Finding` objects (what was
measured, the criterion, a verdict computed from the numbers) that the report's "Beyond the
paper" section lists.
"""

from .findings import Finding, read_findings, write_findings
from .stats import bootstrap_rate, permutation_p_rates, permutation_p_tv, total_variation

__all__ = ["Finding", "bootstrap_rate", "permutation_p_rates", "permutation_p_tv",
           "read_findings", "total_variation", "write_findings"]
