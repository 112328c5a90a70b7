"""Every photograph the tiny models train or validate on has its own scene caption (issue 29):
adaptive prompts then differ per scene on both sides, never the generic "the scene"."""

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.data.images import BUNDLED_PHOTOS, list_sources
from src.prompts import GENERIC_SUBJECT, load_captions

from .conftest import CONFIG_DIR

CAPTIONS = CONFIG_DIR / "captions" / "photos.json"


def _datamodule(task: str, mode: str, shared_dir):
    from src.training.builders import build_datamodule

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"task={task}",
                f"prompt={mode}",
                "paths.run_dir=/tmp/unused",
                f"paths.shared_dir={shared_dir}",
            ],
        )
    assert OmegaConf.select(cfg, "data.captions_file").endswith("conf/captions/photos.json")
    return build_datamodule(cfg)


def test_every_training_and_validation_photo_has_a_caption(shared_dir):
    captions = load_captions(CAPTIONS)
    missing = []
    for folder in ("mcmaster", "set5"):
        sources, _ = list_sources(shared_dir / "data" / folder)
        assert sources, f"no photographs in {shared_dir / 'data' / folder}"
        missing += [f"{folder}/{s.key}" for s in sources if not captions.get(s.key, "").strip()]
    missing += [k for k, caption in BUNDLED_PHOTOS.items() if not caption.strip()]
    assert not missing, f"photographs without a caption in {CAPTIONS}: {missing}"
    assert len(set(captions.values())) == len(captions), "two photographs share a caption"


def test_adaptive_prompts_fit_the_tiny_models_text_window():
    """The tiny models' ByT5 reads max_sequence_length bytes, one of them the end token: a longer
    prompt loses its end ("Nothing moves.") with a warning."""
    from src.prompts import compose_adaptive_prompt

    from .conftest import model_config

    window = model_config("tiny")["max_sequence_length"] - 1
    for task in ("sr", "deblur", "lowlight"):
        template = OmegaConf.load(CONFIG_DIR / "task" / f"{task}.yaml").adaptive_template
        long = {
            k: n
            for k, c in load_captions(CAPTIONS).items()
            if (n := len(compose_adaptive_prompt(template, c).encode())) > window
        }
        assert not long, f"{task}: adaptive prompts over {window} bytes: {long}"


def test_adaptive_prompts_differ_per_scene_on_both_sides(shared_dir):
    prompts = _datamodule("deblur", "adaptive", shared_dir).photo_prompts()
    assert len(prompts["train"]) == len(BUNDLED_PHOTOS) - 2 + 18 and len(prompts["val"]) == 5
    for side, by_photo in prompts.items():
        generic = sorted(k for k, p in by_photo.items() if GENERIC_SUBJECT in p)
        assert not generic, f"{side} photographs prompted with {GENERIC_SUBJECT!r}: {generic}"
        assert len(set(by_photo.values())) == len(by_photo), f"{side}: two photographs share a prompt"
    assert prompts["train"]["mcmaster/mcmaster_18"].startswith("A blurred view of a red covered bridge")
    uniform = _datamodule("deblur", "uniform", shared_dir).photo_prompts()
    assert len({*uniform["train"].values(), *uniform["val"].values()}) == 1
