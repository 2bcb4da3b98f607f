"""Fréchet distance math, the I3D architecture, and loading I3D weights (TorchScript and state dicts)."""

import numpy as np
import pytest
import torch

from cosmos_hf.evaluation.i3d import (
    I3DFeatureExtractor,
    InceptionI3d,
    frechet_distance,
    frechet_distance_from_features,
    load_i3d,
    preprocess_for_i3d,
)
from cosmos_hf.evaluation.tokenizer_metrics import evaluate_video_pairs


def test_frechet_distance_of_gaussians_has_closed_form():
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # Commuting (diagonal) covariances: d = |mu_a - mu_b|^2 + sum (sqrt(var_a) - sqrt(var_b))^2 = 5 + 1 + 1 + 4.
    assert frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(11.0, abs=1e-10)
    # Same covariance (any, here non-diagonal): only the means differ.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    sigma = a @ a.T + 0.1 * np.eye(3)
    assert frechet_distance(mu_a, sigma, mu_b, sigma) == pytest.approx(5.0, abs=1e-9)
    # Rotation-invariant: rotating both distributions leaves the distance unchanged.
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = frechet_distance(q @ mu_a, q @ np.diag(var_a) @ q.T, q @ mu_b, q @ np.diag(var_b) @ q.T)
    assert rotated == pytest.approx(11.0, abs=1e-9)


def test_frechet_distance_from_samples_converges_to_the_formula():
    rng = np.random.default_rng(1)
    a = rng.normal([0, 0], [1, 2], size=(20000, 2))
    b = rng.normal([1, 0], [2, 2], size=(20000, 2))
    assert frechet_distance_from_features(a, b) == pytest.approx(1.0 + 1.0 + 0.0, abs=0.1)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance_from_features(a[:1], b[:1])


def test_i3d_forward_shapes_on_random_weights():
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=400).eval()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(12.7e6, rel=0.05)  # the I3D RGB stream size
    x = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    with torch.no_grad():
        logits = model(x)
        features = model.features(x)
    assert logits.shape == (2, 400, 1) and features.shape == (2, 400)
    assert "Mixed_5c.b3b.conv3d.weight" in model.state_dict() and "logits.conv3d.bias" in model.state_dict()


def test_preprocessing_matches_tokenbench_resize_and_crop():
    video = np.zeros((3, 40, 80, 3), np.uint8)
    video[:, :, :40] = 255  # left half white
    x = preprocess_for_i3d(video, resolution=20)
    assert x.shape == (3, 3, 20, 20) and x.min() >= -1 and x.max() <= 1
    # Shorter side 40 -> 20, width 80 -> 40, centre crop keeps columns 10..29: the left half of the crop is white.
    assert torch.allclose(x[:, :, :, :9], torch.ones(1)) and torch.allclose(x[:, :, :, 11:], -torch.ones(1))


def test_state_dict_and_torchscript_loading(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = InceptionI3d(num_classes=400).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "i3d.safetensors"))
    loaded = load_i3d(tmp_path / "i3d.safetensors")
    loaded.resolution = 32
    video = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    reference = I3DFeatureExtractor(model, "module", resolution=32)(video)
    np.testing.assert_allclose(loaded(video), reference, rtol=1e-5, atol=1e-5)

    class ScriptedDetector(torch.nn.Module):  # the call signature of StyleGAN-V's i3d_torchscript.pt
        def forward(self, x, rescale: bool = True, resize: bool = True, return_features: bool = False):
            return x.mean(dim=(2, 3, 4)).repeat(1, 2)

    torch.jit.script(ScriptedDetector()).save(str(tmp_path / "i3d_torchscript.pt"))
    scripted = load_i3d(tmp_path / "i3d_torchscript.pt")
    assert scripted.kind == "torchscript" and scripted(video).shape == (6,)

    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_i3d(tmp_path / "missing.pt")
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an InceptionI3d state dict"):
        load_i3d(tmp_path / "other.pt")


def test_rfvd_of_identical_sets_is_zero_and_grows_with_distortion():
    torch.manual_seed(0)
    model = InceptionI3d().eval()
    for (
        module
    ) in model.modules():  # He init keeps activations alive through 60 random layers (PyTorch's default fades)
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    extractor = I3DFeatureExtractor(model, "module", resolution=32)
    rng = np.random.default_rng(0)
    videos = [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(4)]
    same = evaluate_video_pairs([(str(i), v, v) for i, v in enumerate(videos)], i3d=extractor, progress=False)
    assert same["rfvd"] == pytest.approx(0.0, abs=1e-6) and same["psnr"] == float("inf")
    darker = evaluate_video_pairs([(str(i), v, v // 2) for i, v in enumerate(videos)], i3d=extractor, progress=False)
    assert darker["rfvd"] > 1e-3 and darker["psnr"] < 20


def test_lpips_network_loads_local_weights_and_measures_distance(tmp_path):
    from safetensors.torch import save_file

    from cosmos_hf.evaluation.lpips import LPIPS, lpips_video

    torch.manual_seed(0)
    model = LPIPS()
    for k in range(5):  # the learned lin weights are non-negative in the released file
        getattr(model, f"lin{k}").model[1].weight.data.abs_()
    save_file(
        {f"features.{k}": v.contiguous() for k, v in model.features.state_dict().items()},
        str(tmp_path / "vgg.safetensors"),
    )
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items() if k.startswith("lin")},
        str(tmp_path / "lin.safetensors"),
    )
    loaded = LPIPS.from_files(tmp_path / "vgg.safetensors", tmp_path / "lin.safetensors")
    video = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert lpips_video(loaded, video, video) == pytest.approx(0.0, abs=1e-7)
    assert lpips_video(loaded, video, 255 - video) > 0
    with pytest.raises(ValueError, match="lin-layer"):
        LPIPS.from_files(tmp_path / "vgg.safetensors", tmp_path / "vgg.safetensors")
