"""recipe.early_stopping: k of N denoising steps, then the denoised estimate decoded (zero-shot
video restoration's early stop, arXiv 2407.01960), on the tiny CogVideoX and Wan pipelines."""

from __future__ import annotations

import pytest
import torch

from src.models import recipe
from src.utils.cli import ConfigError

from .conftest import backbone, transformer_inputs


def test_early_stop_steps_rounds_up_and_rejects_bad_fractions():
    assert recipe.early_stop_steps(10, None) is None
    assert recipe.early_stop_steps(10, 1.0) is None  # every step: no early stop
    assert recipe.early_stop_steps(10, 0.6) == 6
    assert recipe.early_stop_steps(10, 0.55) == 6
    assert recipe.early_stop_steps(10, 0.01) == 1
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="early_stop"):
            recipe.early_stop_steps(10, bad)


@pytest.mark.parametrize("name", ["tiny", "tiny_wan"])
def test_early_stopping_runs_k_steps_and_decodes_the_denoised_estimate(name):
    family = backbone(name, "model.sampling.num_inference_steps=4")
    family.bind(family.load(), cache=False)
    _, height, width = family.geometry
    first = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))

    def sample():
        return family.generate(first, ["a test"], [torch.Generator().manual_seed(1)], use_cache=False)

    full = sample()
    with recipe.early_stopping(family.pipeline, None):  # None: the plain call
        assert torch.equal(sample(), full)
    calls, handle = transformer_inputs(family.components.transformer)
    try:
        with recipe.early_stopping(family.pipeline, 2):
            stopped = sample()
            assert len(calls) == 2  # steps 3 and 4 were skipped
            again = sample()  # set_timesteps restarts the count on every call
            assert len(calls) == 4
    finally:
        handle.remove()
    assert torch.equal(stopped, again)
    assert not torch.allclose(stopped, full, atol=1e-3)  # decoded at step 2, not step 4
    assert "step" not in vars(family.pipeline.scheduler)  # the wrapper is gone after the block
    assert torch.equal(sample(), full)
