"""Directions out to the tools people steer with, and back in.

* :mod:`.llamacpp`: llama.cpp control-vector GGUF (``--control-vector``);
* :mod:`.steering_vectors`: the steering-vectors library's ``SteeringVector``;
* :mod:`.abliterate` / :mod:`.evaluate`: weights with the directions projected out, and
  what that costs (first-token KL, RR / ORR, agreement with hook ablation);
* :mod:`.formats`: one direction in each format; :mod:`.imports`: directions made
  elsewhere as :class:`~refusal_atlas.directions.Direction` s.

Layer conventions are in :mod:`.layers` and ``docs/export.md``.
"""

from .abliterate import (
    abliterate_weights,
    check_abliteration_support,
    orthonormal_basis,
    save_abliterated,
)
from .evaluate import abliterate_model, first_token_kl, first_token_logprobs, refusal_rates
from .formats import (
    direction_to_llamacpp,
    direction_to_steering_vector,
    direction_to_steering_vector_file,
    directions_to_safetensors,
    steering_layers,
)
from .imports import (
    directions_from_steering_vector,
    imported_direction,
    read_directions_file,
    read_extra_directions,
)
from .llamacpp import ControlVector, read_control_vector, write_control_vector
from .steering_vectors import from_steering_vector, to_steering_vector

__all__ = [
    "ControlVector", "abliterate_model", "abliterate_weights", "check_abliteration_support",
    "direction_to_llamacpp", "direction_to_steering_vector", "direction_to_steering_vector_file",
    "directions_from_steering_vector", "directions_to_safetensors", "first_token_kl",
    "first_token_logprobs", "from_steering_vector", "imported_direction", "orthonormal_basis",
    "read_control_vector", "read_directions_file", "read_extra_directions", "refusal_rates",
    "save_abliterated", "steering_layers", "to_steering_vector", "write_control_vector",
]
