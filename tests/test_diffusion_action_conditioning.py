"""Action-conditioned DiT: zero-init start, the reference's AdaLN-only action path (and its fix), bad input."""

import pytest
import torch

from cosmos_hf.diffusion import CosmosActionConditionedTransformer3DModel
from cosmos_hf.diffusion.nano import tiny_transformer


def _inputs(batch=2, frames=3, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(batch, 4, frames, size, size, generator=g),
        timestep=torch.rand(batch, generator=g),
        encoder_hidden_states=torch.randn(batch, 5, 16, generator=g),
        fps=24,
        condition_mask=(torch.arange(frames) < 1).float()[None, None, :, None, None].expand(batch, 1, frames, size,
                                                                                          size).clone(),
        padding_mask=torch.zeros(1, 1, size, size),
    )


def _actions(batch=2, frames=2, seed=1):
    return torch.randn(batch, frames, 7, generator=torch.Generator().manual_seed(seed))


def _action_model(**config):
    base = tiny_transformer(video2world=True)
    config.setdefault("num_action_frames", 2)
    return base, CosmosActionConditionedTransformer3DModel.from_video2world(base, **config)


def _perturb(*modules):
    torch.manual_seed(3)
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.normal_(0, 0.5)


@pytest.mark.parametrize("fix", [False, True])
def test_action_model_from_video2world_reproduces_base_for_any_action(fix):
    base, model = _action_model(fix_timestep_action_path=fix)
    inputs = _inputs()
    expected = base(**inputs, return_dict=False)[0]
    for seed in range(2):
        assert torch.equal(model(**inputs, action=_actions(seed=seed) * 5, return_dict=False)[0], expected)
    # per-frame timesteps [B, 1, T, 1, 1] take the same path
    per_frame = {**inputs, "timestep": torch.rand(2, 1, 3, 1, 1)}
    assert torch.equal(model(**per_frame, action=_actions(), return_dict=False)[0],
                       base(**per_frame, return_dict=False)[0])


def test_action_model_embedder_shapes_match_the_reference():
    _, model = _action_model(num_action_frames=1)
    width = 2 * 12  # tiny: 2 heads x 12
    assert model.action_embedder_B_D.fc1.weight.shape == (4 * width, 7)
    assert model.action_embedder_B_D.fc2.weight.shape == (width, 4 * width)
    assert model.action_embedder_B_3D.fc2.weight.shape == (3 * width, 4 * width)
    assert model.action_embedder_B_3D.fc2.bias.shape == (3 * width,)


def test_reference_quirk_only_the_adaln_lora_path_sees_the_action():
    _, model = _action_model()
    _perturb(model.action_embedder_B_D)  # only the B_D embedder is non-zero: as written, it is never used
    inputs = _inputs()
    a = model(**inputs, action=_actions(seed=1), return_dict=False)[0]
    b = model(**inputs, action=_actions(seed=2), return_dict=False)[0]
    assert torch.equal(a, b)
    _perturb(model.action_embedder_B_3D)
    c = model(**inputs, action=_actions(seed=1), return_dict=False)[0]
    d = model(**inputs, action=_actions(seed=2), return_dict=False)[0]
    assert (c - d).abs().max() > 1e-4
    # the unused B_D embedder gets a zero gradient (not none: DDP would refuse parameters outside the loss)
    model.train()
    model(**inputs, action=_actions(), return_dict=False)[0].square().mean().backward()
    for p in model.action_embedder_B_D.parameters():
        assert p.grad is not None and not p.grad.any()
    assert model.action_embedder_B_3D.fc1.weight.grad.abs().sum() > 0


def test_fix_timestep_action_path_adds_the_b_d_embedding():
    _, model = _action_model(fix_timestep_action_path=True)
    _perturb(model.action_embedder_B_D)
    inputs = _inputs()
    a = model(**inputs, action=_actions(seed=1), return_dict=False)[0]
    b = model(**inputs, action=_actions(seed=2), return_dict=False)[0]
    assert (a - b).abs().max() > 1e-4


def test_action_model_gradients_reach_every_new_parameter():
    _, model = _action_model(fix_timestep_action_path=True)
    model.train()
    # at the zero-initialised start the output layers get a gradient (so training moves them) ...
    model(**_inputs(), action=_actions(), return_dict=False)[0].square().mean().backward()
    assert model.action_embedder_B_3D.fc2.weight.grad.abs().sum() > 0
    assert model.action_embedder_B_D.fc2.weight.grad.abs().sum() > 0
    # ... and once they are non-zero, every new parameter does
    model.zero_grad()
    _perturb(model.action_embedder_B_D.fc2, model.action_embedder_B_3D.fc2)
    model(**_inputs(), action=_actions(), return_dict=False)[0].square().mean().backward()
    for name, p in model.named_parameters():
        if name.startswith("action_embedder"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_action_model_rejects_bad_actions():
    _, model = _action_model()
    inputs = _inputs()
    with pytest.raises(ValueError, match="needs `action`"):
        model(**inputs)
    with pytest.raises(ValueError, match="action_dim 7"):
        model(**inputs, action=torch.zeros(2, 2, 6))
    with pytest.raises(ValueError, match="takes 2 actions per sample"):
        model(**inputs, action=torch.zeros(2, 3, 7))
    with pytest.raises(ValueError, match="batch size 1"):
        model(**inputs, action=torch.zeros(1, 2, 7))
    with pytest.raises(ValueError, match="NaN"):
        model(**inputs, action=torch.full((2, 2, 7), float("nan")))
    with pytest.raises(TypeError, match="unknown options \\['action_channels'\\]"):
        CosmosActionConditionedTransformer3DModel.from_video2world(tiny_transformer(), action_channels=3)


def test_action_model_save_pretrained_round_trip(tmp_path):
    _, model = _action_model(fix_timestep_action_path=True)
    _perturb(model.action_embedder_B_3D)
    model.save_pretrained(tmp_path)
    loaded = CosmosActionConditionedTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.num_action_frames == 2 and loaded.config.fix_timestep_action_path is True
    inputs, action = _inputs(), _actions()
    assert torch.equal(loaded(**inputs, action=action, return_dict=False)[0],
                       model(**inputs, action=action, return_dict=False)[0])


def test_action_model_folder_without_the_action_embedders_is_refused(tmp_path):
    # diffusers only logged the missing keys and left the embedders on the meta device
    from conftest import drop_saved_weights

    _, model = _action_model()
    model.save_pretrained(tmp_path)
    drop_saved_weights(tmp_path, "action_embedder_B_3D.")
    with pytest.raises(ValueError, match="4 missing: action_embedder_B_3D.fc1.bias"):
        CosmosActionConditionedTransformer3DModel.from_pretrained(tmp_path)


def test_action_model_runs_in_bfloat16():
    base = tiny_transformer(video2world=True).to(torch.bfloat16)
    model = CosmosActionConditionedTransformer3DModel.from_video2world(base, num_action_frames=2)
    assert model.action_embedder_B_3D.fc1.weight.dtype == torch.bfloat16
    inputs = {k: (v.to(torch.bfloat16) if torch.is_tensor(v) else v) for k, v in _inputs().items()}
    out = model(**inputs, action=_actions(), return_dict=False)[0]
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


# --- actions_per_latent_frame (not the reference): each latent frame modulated by its own actions ---


def _per_frame_model(**config):
    return _action_model(num_action_frames=4, actions_per_latent_frame=2, **config)  # 1 + 4 / 2 = 3 latent frames


def test_per_latent_frame_features_are_own_actions_and_running_sum():
    _, model = _per_frame_model()
    action = _actions(frames=4)
    features = model.action_features(action).reshape(2, 3, 3 * 7)
    assert model.action_embedder_B_3D.fc1.weight.shape[1] == 3 * 7
    assert not features[:, 0].any()  # latent frame 0 is the first frame: nothing has been done yet
    torch.testing.assert_close(features[:, 1, :14], action[:, 0:2].flatten(1))
    torch.testing.assert_close(features[:, 2, :14], action[:, 2:4].flatten(1))
    torch.testing.assert_close(features[:, 1, 14:], action[:, :2].sum(1))
    torch.testing.assert_close(features[:, 2, 14:], action.sum(1))


def test_per_latent_frame_model_starts_as_base_and_modulates_each_frame():
    base, model = _per_frame_model()
    inputs = _inputs()
    expected = base(**inputs, return_dict=False)[0]
    torch.testing.assert_close(model(**inputs, action=_actions(frames=4) * 5, return_dict=False)[0], expected,
                               rtol=0, atol=1e-6)
    _perturb(model.action_embedder_B_3D)
    captured = []
    hook = model.time_embed.register_forward_hook(lambda module, args, out: captured.append(out[0].detach()))
    early, late = _actions(frames=4), _actions(frames=4)
    late[:, 2:] += 1.0  # differ only in the actions that lead into the last latent frame
    out_early = model(**inputs, action=early, return_dict=False)[0]
    out_late = model(**inputs, action=late, return_dict=False)[0]
    hook.remove()
    temb_early, temb_late = (t.reshape(2, 3, -1) for t in captured)
    assert torch.equal(temb_early[:, :2], temb_late[:, :2])  # frames 0 and 1 get the same modulation ...
    assert (temb_early[:, 2] - temb_late[:, 2]).abs().max() > 1e-4  # ... frame 2 its own
    assert (out_early - out_late).abs().max() > 1e-4


def test_per_latent_frame_model_rejects_mismatched_windows():
    with pytest.raises(ValueError, match="must be >= 1 and divide num_action_frames \\(4\\), got 3"):
        _action_model(num_action_frames=4, actions_per_latent_frame=3)
    _, model = _per_frame_model()
    with pytest.raises(ValueError, match="4 actions need 1 \\+ 4 / 2 = 3 latent frames, got 5"):
        model(**_inputs(frames=5), action=_actions(frames=4))


def test_action_normalisation_standardises_what_the_embedders_read(tmp_path):
    from cosmos_hf.diffusion.action_conditioning import action_statistics

    actions = torch.randn(64, 2, 7) * torch.tensor([0.01, 0.02, 0.02, 0.01, 0.01, 0.1, 0.5]) + 0.3
    mean, std = action_statistics(actions)
    torch.testing.assert_close(torch.tensor(mean), actions.reshape(-1, 7).double().mean(0), check_dtype=False)
    _, model = _action_model()
    raw = model.action_features(actions[:2])
    model.set_action_normalization(mean, std)
    normalised = model.action_features(actions).reshape(-1, 7)
    torch.testing.assert_close(normalised.mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalised.std(0), torch.ones(7), atol=1e-4, rtol=0)
    assert not torch.allclose(model.action_features(actions[:2]), raw)
    # saved with the model
    _perturb(model.action_embedder_B_3D)
    model.save_pretrained(tmp_path)
    loaded = CosmosActionConditionedTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.action_std == model.config.action_std
    inputs = _inputs()
    torch.testing.assert_close(loaded(**inputs, action=actions[:2], return_dict=False)[0],
                               model(**inputs, action=actions[:2], return_dict=False)[0])
    # a dimension that never varies keeps a floor, not a division by zero
    assert action_statistics(torch.zeros(5, 7))[1] == [1e-3] * 7
    with pytest.raises(ValueError, match="need 7 values"):
        model.set_action_normalization([0.0] * 6, [1.0] * 6)
    with pytest.raises(ValueError, match="finite and > 0"):
        model.set_action_normalization([0.0] * 7, [1.0] * 6 + [0.0])
    with pytest.raises(ValueError, match="must be given together"):
        _action_model(action_mean=[0.0] * 7)
