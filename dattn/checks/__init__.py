"""Exercise checkers of notebooks 0 to 7: they accept an answer at the precision the notebook shows, say
which mistake a wrong answer probably comes from (never the expected value), and show a worked solution
only when asked.

>>> from dattn import checks
>>> checks.check_max_offset_pixels(4.22, H=20, stride=2, offset_range_factor=4)   # doctest: +SKIP
Correct! 4.22 pixels, at the two decimals the notebook shows.
>>> checks.solution("max_offset")      # the worked solution, on request       # doctest: +SKIP
>>> checks.exercises("02")             # the keys of notebook 2's exercises    # doctest: +SKIP

Every checker prints its verdict and returns a ``Verdict`` (true when right; ``.mistake`` names the
diagnosis). Function exercises (``check_seed_spacing``, ``check_bilinear``, ``check_multihead_attention``) run the
learner's function on inputs made at check time, with the helpers that compute the answer switched off.
One module per notebook: ``nb0_keys``, ``nb1_reference``, ``nb2_offsets``, ``nb3_sampling``,
``nb4_attention``, ``nb5_yolo``, ``nb6_trained``, ``nb7_detector``; ``core`` holds what they share.
"""

from .core import EXERCISES, Verdict, exercises, hint, solution
from .nb0_keys import check_key_count
from .nb1_reference import check_reference_pixels, check_seed_spacing
from .nb2_offsets import check_max_offset_distance, check_max_offset_pixels
from .nb3_sampling import check_bilinear, check_position_gradient
from .nb4_attention import check_attention_flops, check_layer_attention_flops, check_multihead_attention
from .nb5_yolo import check_parameter_count
from .nb6_trained import check_fixed_accuracy, reference_grid_px
from .nb7_detector import check_to_image, check_two_seeds

__all__ = [
    "EXERCISES",
    "Verdict",
    "check_attention_flops",
    "check_bilinear",
    "check_fixed_accuracy",
    "check_key_count",
    "check_layer_attention_flops",
    "check_max_offset_distance",
    "check_max_offset_pixels",
    "check_multihead_attention",
    "check_parameter_count",
    "check_position_gradient",
    "check_reference_pixels",
    "check_seed_spacing",
    "check_to_image",
    "check_two_seeds",
    "exercises",
    "hint",
    "reference_grid_px",
    "solution",
]
