"""Encoders: what a spec resolves to, its tag and record, batch independence, errors that say what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from designclip.pipeline.embed.encoder import EncoderError, EncoderSpec, load_encoder, model_tag

from tests.fixtures.release import read_samples

CAPTIONS = ["Front perspective view of a shoe.", "a chair with curved legs", "Side view of a lamp, class D26.",
            "", "a very long caption " * 40]


@pytest.fixture(scope="module")
def encoder(tiny_export: Path):
    return load_encoder(EncoderSpec(str(tiny_export)))


@pytest.fixture(scope="module")
def drawings(release_data: Path, release_v1: dict) -> list:
    from designclip.pipeline.train.data import decode_image

    samples = read_samples(release_data / "releases/v1/test/00000.tar")
    return [decode_image(m["png"]) for _, m in samples]


@pytest.mark.parametrize(("spec", "tag"), [
    (EncoderSpec("ViT-B-32", "openai"), "ViT-B-32-openai"),
    (EncoderSpec("hf-hub:patentclip/PatentCLIP_Vit_B"), "hf-hub-patentclip-PatentCLIP_Vit_B"),
    (EncoderSpec("/data/models/designclip-b16"), "designclip-b16"),
    (EncoderSpec("local-dir:/data/models/designclip-b16/"), "designclip-b16"),
    (EncoderSpec("./exports/my run"), "my-run"),
    (EncoderSpec("designclip-b16"), "designclip-b16"),  # a run name
    (EncoderSpec("ViT-B-32"), "ViT-B-32-random"),  # an open_clip name without weights: the random-init baseline
    (EncoderSpec("designclip-tiny"), "designclip-tiny-random"),  # the repository's own config counts as one
])
def test_model_tag(spec: EncoderSpec, tag: str) -> None:
    assert model_tag(spec) == tag


def test_export_encoder_record_and_unit_vectors(encoder, tiny_export: Path, drawings: list) -> None:
    from designclip.pipeline.embed.encoder import state_dict_sha256
    from safetensors.torch import load_file

    assert (encoder.tag, encoder.dim, encoder.device, encoder.precision) == ("tiny-untrained", 64, "cpu", "fp32")
    record = encoder.record()
    assert record["spec"] == {"model": str(tiny_export), "pretrained": None}
    assert record["kind"] == "designclip-clip" and record["has_text"]
    assert record["init"] == "exported without training steps"
    assert record["export"]["run"] == "tiny-untrained"
    assert len(record["weights_sha256"]) == 64
    assert record["weights_files"] == ["open_clip_model.safetensors", "designclip_heads.safetensors"]
    assert record["preprocess"] == {"keep_ink": True, "input_size": 64, "recorded": True}, "as training feeds views"
    image, text = encoder.encode_images(drawings), encoder.encode_texts(CAPTIONS)
    assert image.dtype == text.dtype == np.float32
    assert image.shape == (len(drawings), 64) and text.shape == (len(CAPTIONS), 64)
    np.testing.assert_allclose(np.linalg.norm(image, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_images([]).shape == encoder.encode_texts([]).shape == (0, 64)
    # the weights hash changes with one changed value
    weights = load_file(str(tiny_export / "open_clip_model.safetensors"))
    module = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(v) for k, v in weights.items()})
    before = state_dict_sha256(module)
    with torch.no_grad():
        next(iter(module.values())).view(-1)[0] += 1
    assert state_dict_sha256(module) != before


def test_a_batch_of_one_gives_the_same_vectors_as_a_batch_of_many(encoder, drawings: list) -> None:
    many = encoder.encode_texts(CAPTIONS)
    one = np.concatenate([encoder.encode_texts([t]) for t in CAPTIONS])
    np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)
    many = encoder.encode_images(drawings)
    one = np.concatenate([encoder.encode_images([d]) for d in drawings])
    np.testing.assert_allclose(one, many, atol=1e-5, rtol=0)
    assert not np.allclose(many[0], many[1]), "different drawings, different vectors"


def test_class_prompts_use_the_models_template(encoder, tmp_path: Path) -> None:
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_design_clip
    from designclip.pipeline.train.model_configs import tiny_model_config

    titles = {"D1": "Edible Products", "D2": "Apparel and Haberdashery"}
    assert encoder.class_prompts(titles) == ["a patent drawing of Edible Products",
                                             "a patent drawing of Apparel and Haberdashery"]
    model, _, _, _ = build_design_clip("designclip-tiny", model_config=tiny_model_config(),
                                       prompt_template="a {code} design: {title}")
    custom = load_encoder(EncoderSpec(str(export_model(model, tmp_path / "custom", "designclip-tiny"))))
    assert custom.class_prompts(titles) == ["a D1 design: Edible Products", "a D2 design: Apparel and Haberdashery"]
    assert custom.record()["prompt_template"] == "a {code} design: {title}"
    assert custom.record()["weights_sha256"] != encoder.record()["weights_sha256"]


def test_a_plain_open_clip_folder_gives_the_exports_vectors(encoder, tiny_export: Path, tmp_path: Path,
                                                           drawings: list) -> None:
    folder = tmp_path / "plain-clip"
    folder.mkdir()
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        shutil.copy(tiny_export / name, folder / name)
    plain = load_encoder(EncoderSpec(str(folder)))
    record = plain.record()
    assert (plain.tag, plain.dim, record["kind"], record["weights_files"]) == (
        "plain-clip", 64, "open_clip-folder", ["open_clip_model.safetensors"])
    np.testing.assert_allclose(plain.encode_images(drawings), encoder.encode_images(drawings), atol=1e-5)
    np.testing.assert_allclose(plain.encode_texts(CAPTIONS), encoder.encode_texts(CAPTIONS), atol=1e-5)
    assert plain.class_prompts({"D3": "Travel Goods"}) == ["a patent drawing of Travel Goods"]


def test_random_init_baseline_is_reproducible_and_says_so(drawings: list) -> None:
    a, b = (load_encoder(EncoderSpec("designclip-tiny")) for _ in range(2))
    assert a.tag == "designclip-tiny-random"
    assert a.record()["init"] == "random init (seed 0)" and a.record()["kind"] == "open_clip"
    assert a.record()["weights_sha256"] == b.record()["weights_sha256"]
    np.testing.assert_array_equal(a.encode_images(drawings[:2]), b.encode_images(drawings[:2]))


def test_a_run_name_resolves_under_the_data_root(encoder, tiny_export: Path, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "run-a").symlink_to(tiny_export, target_is_directory=True)
    run = load_encoder(EncoderSpec("run-a"), data_root=str(tmp_path))
    assert run.tag == "run-a" and run.record()["source"] == "run"
    assert run.record()["weights_sha256"] == encoder.record()["weights_sha256"]
    with pytest.raises(EncoderError, match=r"no model 'run-b'.*run-a.*`designclip train --release R --run run-b`"):
        load_encoder(EncoderSpec("run-b"), data_root=str(tmp_path))
    with pytest.raises(EncoderError, match="no trained models under"):
        load_encoder(EncoderSpec("run-a"), data_root=str(tmp_path / "empty"))
    with pytest.raises(EncoderError, match="pass the data root"):
        load_encoder(EncoderSpec("run-a"))
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder(EncoderSpec(str(tmp_path / "nowhere")))
    with pytest.raises(EncoderError, match="neither a DesignCLIP export"):
        load_encoder(EncoderSpec(str(tmp_path / "models")))


def test_hub_weights_offline_say_to_pass_a_local_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against an absent network
    with pytest.raises(EncoderError, match="cannot be downloaded offline.*pass that local folder"):
        load_encoder(EncoderSpec("hf-hub:patentclip/PatentCLIP_Vit_B"))
    with pytest.raises(EncoderError, match=r"designclip-tiny \(openai\).*cannot be downloaded offline"):
        load_encoder(EncoderSpec("designclip-tiny", "openai"))


def test_bad_device_and_tag_are_refused(tiny_export: Path) -> None:
    if not torch.cuda.is_available():
        with pytest.raises(EncoderError, match="no CUDA GPU"):
            load_encoder(EncoderSpec(str(tiny_export)), device="cuda")
    with pytest.raises(EncoderError, match="letters, digits"):
        load_encoder(EncoderSpec(str(tiny_export)), tag="../escape")


def test_an_arcface_export_embeds_drawings_only(tmp_path: Path, drawings: list) -> None:
    from designclip.pipeline.train.export import export_model
    from designclip.pipeline.train.model import build_arcface
    from designclip.pipeline.train.model_configs import tiny_model_config

    model, _, _ = build_arcface("designclip-tiny", 5, model_config=tiny_model_config(), embed_dim=32)
    arc = load_encoder(EncoderSpec(str(export_model(model.eval(), tmp_path / "arc", "designclip-tiny"))))
    assert (arc.dim, arc.has_text, arc.record()["kind"]) == (32, False, "designclip-arcface")
    vectors = arc.encode_images(drawings)
    assert vectors.shape == (len(drawings), 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(EncoderError, match="image-only model"):
        arc.encode_texts(["a chair"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_autocast_gives_float32_unit_vectors_close_to_cpu(tiny_export: Path, drawings: list) -> None:
    cpu = load_encoder(EncoderSpec(str(tiny_export)), device="cpu")
    gpu = load_encoder(EncoderSpec(str(tiny_export)))
    assert gpu.device == "cuda" and gpu.precision in ("bf16", "fp16")
    for a, b in ((gpu.encode_images(drawings), cpu.encode_images(drawings)),
                 (gpu.encode_texts(CAPTIONS), cpu.encode_texts(CAPTIONS))):
        assert a.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        assert float(np.min(np.sum(a * b, axis=1))) > 0.99
