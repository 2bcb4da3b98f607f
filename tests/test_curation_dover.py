"""DOVER quality loader: the released checkpoint's key names, strict loading, the technical (fragments) and
aesthetic (resized) views against direct numpy computations, the fused score and the `--quality dover` wiring.
DOVER.pth cannot be downloaded here: a tiny DOVER with random weights stands in for it."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cosmos_hf.curation.dover import (
    DoverConfig,
    DoverModel,
    DoverQuality,
    SwinTransformer3D,
    aesthetic_view,
    fuse_scores,
    load_dover_state,
    read_dover_config,
    sample_frame_indices,
    save_dover_weights,
    technical_view,
)

# 2x2 fragments of 16 px (32 px technical view), 2 clips of 4 frames, 4 aesthetic frames at 32 px; a 2-stage Swin
# (window 2x4x4: stage 0 shifts, stage 1 clips the window) and a 2-stage ConvNeXt.
TINY = DoverConfig(swin_embed_dim=8, swin_depths=(2, 2), swin_num_heads=(1, 2), swin_window=(2, 4, 4),
                   swin_fragment_bias=(True, False), convnext_depths=(1, 2), convnext_dims=(8, 16), head_hidden=4,
                   fragments=2, fragment_size=16, technical_clips=2, technical_frames=4, aesthetic_frames=4,
                   aesthetic_size=32)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    model = DoverModel(TINY).eval()
    with torch.no_grad():  # non-zero bias tables so the fragment gate matters
        for name, p in model.named_parameters():
            if "bias_table" in name:
                p.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("dover")
    save_dover_weights(model, folder / "tiny.safetensors")
    torch.save(model.state_dict(), folder / "tiny.pth")
    return model, folder


@pytest.fixture(scope="module")
def clip():
    from cosmos_hf.sim import simulate

    return simulate("dominoes", seed=1, num_frames=20, height=48, width=64).video


def test_released_key_names():
    state = DoverModel().state_dict()
    keys = set(state)
    assert len(keys) == 381
    for key in ("technical_backbone.patch_embed.proj.weight", "technical_backbone.patch_embed.norm.weight",
                "technical_backbone.layers.0.blocks.1.attn.fragment_position_bias_table",
                "technical_backbone.layers.2.blocks.5.attn.relative_position_index",
                "technical_backbone.layers.2.downsample.reduction.weight", "technical_backbone.norm.bias",
                "aesthetic_backbone.downsample_layers.0.0.weight", "aesthetic_backbone.downsample_layers.3.1.weight",
                "aesthetic_backbone.stages.2.8.gamma", "aesthetic_backbone.stages.3.2.pwconv2.weight",
                "aesthetic_backbone.norm.weight", "technical_head.fc_hid.weight", "aesthetic_head.fc_last.bias"):
        assert key in keys, key
    # The last Swin stage has no gated fragment bias; tables are (2*8-1)(2*7-1)^2 rows x heads.
    assert "technical_backbone.layers.3.blocks.0.attn.fragment_position_bias_table" not in keys
    table = state["technical_backbone.layers.3.blocks.0.attn.relative_position_bias_table"]
    assert tuple(table.shape) == (15 * 13 * 13, 24)


def test_tiny_weights_load_and_score(tiny_weights, clip):
    model, folder = tiny_weights
    assert read_dover_config(folder / "tiny.safetensors") == TINY
    scorer = DoverQuality(folder / "tiny.safetensors", min_score=0.0)
    from_pth = DoverQuality(folder / "tiny.pth", config=TINY, min_score=0.0)
    result = scorer(clip)
    assert result.passed and result.reason is None
    assert set(result.scores) == {"dover", "dover_technical", "dover_aesthetic"}
    assert 0.0 < result.scores["dover"] < 1.0
    assert from_pth(clip).scores == result.scores and scorer(clip).scores == result.scores  # same file, seeded
    # The scores are the head outputs' means on the two views, fused.
    technical, aesthetic = scorer.views(clip)
    assert tuple(technical.shape) == (2, 3, 4, 32, 32) and tuple(aesthetic.shape) == (1, 3, 4, 32, 32)
    with torch.no_grad():
        t_map, a_map = model(technical, aesthetic)
    assert result.scores["dover_technical"] == pytest.approx(float(t_map.mean()), abs=1e-6)
    assert result.scores["dover"] == pytest.approx(fuse_scores(float(t_map.mean()), float(a_map.mean())))
    strict = DoverQuality(folder / "tiny.safetensors", min_score=1.0)(clip)
    assert not strict.passed and strict.reason == "low_dover"


def test_fusion_is_the_released_sigmoid():
    assert fuse_scores(0.1107, -0.08285) == pytest.approx(0.5)  # both branches at their mean
    assert fuse_scores(0.1107 + 0.07355, -0.08285) == pytest.approx(1 / (1 + np.exp(-0.6104)))
    assert fuse_scores(0.0, 0.0) < fuse_scores(0.2, 0.0) < fuse_scores(0.2, 0.1)


def test_strict_loading_names_the_mismatch(tiny_weights, tmp_path):
    from safetensors.torch import save_file

    model, folder = tiny_weights
    state = dict(model.state_dict())
    state.pop("technical_head.fc_hid.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"missing keys 1 \['technical_head.fc_hid.weight'\].*unexpected keys 1 "
                                         r"\['extra.weight'\]"):
        DoverQuality(tmp_path / "bad.safetensors", config=TINY)
    with pytest.raises(ValueError, match="shape mismatches"):  # tiny weights into a wider model
        DoverQuality(folder / "tiny.pth", config=DoverConfig(**{**TINY.__dict__, "head_hidden": 8}))
    with pytest.raises(ValueError, match="min_score must be in"):
        DoverQuality(folder / "tiny.pth", config=TINY, min_score=2.0)


def test_temporal_sampling_segments_and_wraps():
    rng = np.random.default_rng(3)
    indices = sample_frame_indices(100, 4, 3, 2, rng).reshape(3, 4)
    for k, row in enumerate(indices):  # segment k is frames [33k, 33k + 33); 4 frames 2 apart at a random start
        assert np.all(np.diff(row) == 2) and 33 * k <= row[0] and row[-1] < 33 * k + 33
    # A clip shorter than the sampled span: segment starts, frames wrap around the end.
    np.testing.assert_array_equal(sample_frame_indices(10, 8, 2, 2, rng), (np.r_[0 + 2 * np.arange(8),
                                                                                  5 + 2 * np.arange(8)]) % 10)


def test_technical_fragments_match_numpy():
    frames = np.random.default_rng(0).integers(0, 256, (8, 70, 90, 3), dtype=np.uint8)  # 2 clips x 4 frames
    view = technical_view(frames, TINY, np.random.default_rng(7))
    assert view.shape == (8, 32, 32, 3)
    # Direct computation: cell (i, j) of clip k is the 16-px square at the cell's grid position (70 // 2 * i,
    # clamped to 70 - 16) plus an offset drawn in [0, cell - 16) per cell and clip, rows before columns.
    rng = np.random.default_rng(7)
    dy = rng.integers(0, 35 - 16, (2, 2, 2))
    dx = rng.integers(0, 45 - 16, (2, 2, 2))
    rows, cols = [0, min(35, 70 - 16)], [0, min(45, 90 - 16)]
    for k in range(2):
        for i in range(2):
            for j in range(2):
                top, left = rows[i] + dy[i, j, k], cols[j] + dx[i, j, k]
                expected = frames[4 * k:4 * k + 4, top:top + 16, left:left + 16]
                np.testing.assert_array_equal(view[4 * k:4 * k + 4, 16 * i:16 * i + 16, 16 * j:16 * j + 16], expected)
    # Frames smaller than the view are upscaled first (shorter side -> 32), then cut into fragments.
    small = technical_view(frames[:, :20, :30], TINY, np.random.default_rng(0))
    assert small.shape == (8, 32, 32, 3) and small.max() > 0


def numpy_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize without antialiasing, in float64."""
    def axis(n_in):
        src = np.maximum((np.arange(size) + 0.5) * n_in / size - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, fy = axis(image.shape[0])
    x0, x1, fx = axis(image.shape[1])
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def test_aesthetic_view_is_a_plain_bilinear_resize():
    frames = np.random.default_rng(1).integers(0, 256, (3, 45, 80, 3), dtype=np.uint8)
    for size in (32, 100):  # down (no antialiasing: aliasing kept, as DOVER) and up, aspect ratio not kept
        view = aesthetic_view(frames, size)
        assert view.shape == (3, size, size, 3) and view.dtype == np.uint8
        expected = np.stack([numpy_bilinear(f, size) for f in frames])
        assert np.abs(view.astype(float) - expected).max() <= 0.5 + 1e-3  # rounding of the same values
        # = torchvision's tensor Resize((size, size)) without antialiasing (its default before 0.17, used by DOVER)
        from torchvision.transforms.functional import resize

        tv = resize(torch.from_numpy(frames).permute(0, 3, 1, 2), [size, size], antialias=False)
        assert np.array_equal(view, tv.permute(0, 2, 3, 1).numpy())


def test_quality_dover_in_the_pipeline_and_cli(tiny_weights, tmp_path):
    from cosmos_hf.cli import main
    from cosmos_hf.curation import CurationConfig, LocalExecutor, run_curation
    from cosmos_hf.data import write_video
    from cosmos_hf.sim import simulate

    _, folder = tiny_weights
    write_video(tmp_path / "in" / "a.mp4", simulate("free_fall", seed=2, num_frames=48, height=64, width=64).video, 24)
    weights = str(folder / "tiny.safetensors")
    assert main(["curate", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "keep"), "--executor", "local",
                 "--quality", "dover", "--dover-weights", weights, "--min-dover", "0", "--min-clip-seconds", "1",
                 "--no-progress"]) == 0
    row = json.loads((tmp_path / "keep" / "metadata.jsonl").read_text().splitlines()[0])
    assert 0 < row["scores"]["dover"] < 1 and "dover_aesthetic" in row["scores"]
    summary = run_curation(tmp_path / "in", tmp_path / "reject", CurationConfig(
        quality="dover", dover_weights=weights, min_dover=1.0, min_clip_seconds=1.0), executor=LocalExecutor(),
        progress=False)
    assert summary["rejections"] == {"dover:low_dover": 1} and summary["stages"]["filter"]["passed"] == 0
    assert main(["curate", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "cli"), "--executor", "local",
                 "--quality", "dover", "--no-progress"]) == 2  # no --dover-weights


REFERENCE = os.environ.get("COSMOS_HF_DOVER_REFERENCE")


def import_reference_models(monkeypatch, checkout):
    """DOVER's own model modules (dover/models/*.py of a local checkout), with the two timm helpers they import
    stubbed (DropPath is the identity at inference; trunc_normal_ only initialises)."""
    import importlib
    import sys
    import types

    timm, models = types.ModuleType("timm"), types.ModuleType("timm.models")
    layers, registry = types.ModuleType("timm.models.layers"), types.ModuleType("timm.models.registry")
    layers.DropPath = lambda *args, **kwargs: torch.nn.Identity()
    layers.trunc_normal_ = torch.nn.init.trunc_normal_
    registry.register_model = lambda fn: fn
    # The view functions' module imports video readers at the top; they are not used for in-memory frames.
    decord, skvideo, skvideo_io = (types.ModuleType(n) for n in ("decord", "skvideo", "skvideo.io"))
    decord.bridge = types.SimpleNamespace(set_bridge=lambda name: None)
    decord.VideoReader = decord.cpu = decord.gpu = None
    stubs = {"timm": timm, "timm.models": models, "timm.models.layers": layers, "timm.models.registry": registry,
             "decord": decord, "skvideo": skvideo, "skvideo.io": skvideo_io}
    for folder in ("models", "datasets"):
        package = types.ModuleType(f"dover_reference_{folder}")
        package.__path__ = [str(Path(checkout) / "dover" / folder)]
        stubs[package.__name__] = package
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    modules = {name: importlib.import_module(f"dover_reference_models.{name}")
               for name in ("swin_backbone", "conv_backbone", "evaluator")}
    modules["views"] = importlib.import_module("dover_reference_datasets.dover_datasets")
    return modules


@pytest.mark.skipif(not REFERENCE, reason="set COSMOS_HF_DOVER_REFERENCE to a DOVER git checkout to compare with "
                                          "its model code")
def test_matches_dover_reference_code(monkeypatch):
    pytest.importorskip("einops")
    ref = import_reference_models(monkeypatch, REFERENCE)
    torch.manual_seed(0)

    def randomize(model):
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.05 if p.ndim > 1 else 0.3)

    # The released DOVER (dover.yml; the ConvNeXt's ImageNet initialisation download is skipped): same state dict.
    monkeypatch.setattr(ref["evaluator"], "convnext_3d_tiny",
                        lambda pretrained=False, **kw: ref["conv_backbone"].convnext_3d_tiny(pretrained=False, **kw))
    released = ref["evaluator"].DOVER(
        backbone={"technical": {"type": "swin_tiny_grpb", "checkpoint": True, "pretrained": None},
                  "aesthetic": {"type": "conv_tiny"}},
        backbone_preserve_keys="technical,aesthetic", divide_head=True,
        vqa_head={"in_channels": 768, "hidden_channels": 64})
    randomize(released)
    mine = DoverModel()
    load_dover_state(mine, released.state_dict(), "reference DOVER")
    x = torch.randn(1, 3, 4, 224, 224)
    expected = released({"technical": x, "aesthetic": x})  # evaluates without grad, as the reference runs it
    with torch.no_grad():
        got = mine.eval()(x, x)
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    # Views where DOVER's sampling has no randomness (segments / grid cells no longer than what is cut from them).
    views = ref["views"]
    for frames, per_segment, segments in ((150, 32, 3), (64, 1, 32)):
        np.testing.assert_array_equal(sample_frame_indices(frames, per_segment, segments, 2, np.random.default_rng()),
                                      views.UnifiedFrameSampler(per_segment, segments, 2)(frames))
    video = np.random.default_rng(0).integers(0, 256, (32, 224, 224, 3), dtype=np.uint8)
    expected = views.get_spatial_fragments(torch.from_numpy(video).permute(3, 0, 1, 2), 7, 7, 32, 32, aligned=32)
    got = technical_view(video, DoverConfig(technical_clips=1), np.random.default_rng())
    np.testing.assert_array_equal(got, expected.permute(1, 2, 3, 0).numpy())
    video = np.random.default_rng(1).integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    expected = views.get_resized_video(torch.from_numpy(video).permute(3, 0, 1, 2), 224, 224)  # torchvision Resize
    difference = aesthetic_view(video, 224).astype(int) - expected.permute(1, 2, 3, 0).numpy().astype(int)
    assert np.abs(difference).max() <= 1  # upscaling: torchvision's antialias default does not matter
    # Small Swin variants: padding, clipped windows, shifted windows with the fragment gate, several stages.
    for size, window, depths, heads, gated in [((8, 64, 64), (2, 4, 4), (2, 2), (1, 2), (True, False)),
                                               ((6, 40, 56), (4, 3, 3), (2, 2, 2), (2, 2, 4), (True, True, False))]:
        swin = ref["swin_backbone"].SwinTransformer3D(embed_dim=8, depths=list(depths), num_heads=list(heads),
                                                      window_size=window, frag_biases=list(gated), use_checkpoint=False)
        swin.eval()
        randomize(swin)
        config = DoverConfig(swin_embed_dim=8, swin_depths=depths, swin_num_heads=heads, swin_window=window,
                             swin_fragment_bias=gated)
        ours = SwinTransformer3D(config).eval()
        ours.load_state_dict(swin.state_dict(), strict=True)
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), swin(x), rtol=1e-5, atol=1e-6)
