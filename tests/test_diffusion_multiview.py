"""Multi-view DiT: views along time, per-view positions and captions, view/trajectory channels, bad input."""

import math

import pytest
import torch
from diffusers.models.attention_processor import Attention
from diffusers.models.transformers.transformer_cosmos import CosmosAttnProcessor2_0

from cosmos_hf.diffusion import CosmosMultiViewTransformer3DModel
from cosmos_hf.diffusion.multiview import CosmosMultiViewCrossAttnProcessor, CosmosMultiViewSinCosPositionalEmbed
from cosmos_hf.diffusion.nano import tiny_transformer


def _inputs(views=1, batch=2, frames=2, size=8, text_len=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    total = views * frames
    mask = (torch.arange(frames) < 1).float().repeat(views)  # first frame of every view is conditioning
    return dict(
        hidden_states=torch.randn(batch, 4, total, size, size, generator=g),
        timestep=torch.rand(batch, generator=g),
        encoder_hidden_states=torch.randn(batch, views * text_len, 16, generator=g),
        fps=24,
        condition_mask=mask[None, None, :, None, None].expand(batch, 1, total, size, size).clone(),
        padding_mask=torch.zeros(1, 1, size, size),
    )


def _multiview_model(**config):
    base = tiny_transformer(video2world=True)
    config.setdefault("num_views", 3)
    config.setdefault("view_embed_dim", 3)
    return base, CosmosMultiViewTransformer3DModel.from_video2world(base, **config)


def _perturb(*modules, seed=3):
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.normal_(0, 0.5)


def test_one_view_reproduces_the_base_exactly():
    base, model = _multiview_model(num_views=1, trajectory_dim=12)
    inputs = _inputs(views=1, frames=3)
    expected = base(**inputs, return_dict=False)[0]
    for seed in range(2):
        trajectory = torch.randn(2, 12, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(model(**inputs, trajectory=trajectory, return_dict=False)[0], expected)


def test_views_see_each_other_through_self_attention_only():
    # As in the reference, self-attention spans all views: with a shared caption a view's output is NOT the base
    # run on that view alone ...
    base, model = _multiview_model(num_views=2)
    inputs = _inputs(views=2)
    caption = inputs["encoder_hidden_states"][:, :5]
    inputs["encoder_hidden_states"] = caption.repeat(1, 2, 1)
    out = model(**inputs, return_dict=False)[0]
    alone = base(**{**inputs, "hidden_states": inputs["hidden_states"][:, :, :2],
                    "condition_mask": inputs["condition_mask"][:, :, :2], "encoder_hidden_states": caption},
                 return_dict=False)[0]
    assert (out[:, :, :2] - alone).abs().max() > 1e-4
    # ... but two identical views get identical outputs: positions restart per view and captions are per view
    same = {**inputs, "hidden_states": inputs["hidden_states"][:, :, :2].repeat(1, 1, 2, 1, 1)}
    _perturb(model.learnable_pos_embed)  # make the (per-view) extra position embedding matter
    out = model(**same, return_dict=False)[0]
    torch.testing.assert_close(out[:, :, :2], out[:, :, 2:], atol=1e-5, rtol=0)
    # the RoPE is one view's, tiled
    cos, sin = model.rope(same["hidden_states"], fps=24)
    base_cos, base_sin = base.rope(same["hidden_states"][:, :, :2], fps=24)
    assert torch.equal(cos, base_cos.repeat(2, 1)) and torch.equal(sin, base_sin.repeat(2, 1))


def test_cross_attention_is_per_view():
    torch.manual_seed(0)
    attn = Attention(query_dim=8, cross_attention_dim=6, heads=2, dim_head=4, qk_norm="rms_norm",
                     elementwise_affine=True, out_bias=False, processor=CosmosMultiViewCrossAttnProcessor(3))
    video = torch.randn(2, 3 * 4, 8)
    text = torch.randn(2, 3 * 5, 6)
    out = attn(video, encoder_hidden_states=text)
    # view 1's tokens equal diffusers' attention of view 1 alone against view 1's caption
    attn_plain = attn.processor.processor
    assert isinstance(attn_plain, CosmosAttnProcessor2_0)
    alone = attn_plain(attn, video[:, 4:8], text[:, 5:10])
    torch.testing.assert_close(out[:, 4:8], alone, atol=1e-6, rtol=0)
    # changing view 2's caption leaves views 0 and 1 untouched
    text2 = text.clone()
    text2[:, 10:] = torch.randn(2, 5, 6)
    out2 = attn(video, encoder_hidden_states=text2)
    assert torch.equal(out2[:, :8], out[:, :8]) and not torch.equal(out2[:, 8:], out[:, 8:])
    # a text mask is split per view like the text
    mask = torch.ones(2, 1, 1, 15, dtype=torch.bool)
    mask[:, ..., 7:] = False  # view 1 keeps 2 of its tokens
    masked = attn(video, encoder_hidden_states=text, attention_mask=mask)
    alone = attn_plain(attn, video[:, 4:8], text[:, 5:7])
    torch.testing.assert_close(masked[:, 4:8], alone, atol=1e-6, rtol=0)


def test_encoder_hidden_states_as_views_by_tokens_equals_flat_layout():
    _, model = _multiview_model()
    inputs = _inputs(views=3)
    flat = model(**inputs, return_dict=False)[0]
    per_view = {**inputs, "encoder_hidden_states": inputs["encoder_hidden_states"].reshape(2, 3, 5, 16)}
    assert torch.equal(model(**per_view, return_dict=False)[0], flat)


def test_view_and_trajectory_channels_change_the_output_once_trained():
    _, model = _multiview_model(trajectory_dim=12, add_frame_repeat_embedding=True)
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    inputs = _inputs(views=3)
    trajectory = torch.randn(2, 12)
    reference = model(**inputs, trajectory=trajectory, return_dict=False)[0]
    swapped = model(**inputs, trajectory=trajectory, view_indices=torch.tensor([2, 1, 0]), return_dict=False)[0]
    assert (reference - swapped).abs().max() > 1e-4
    moved = model(**inputs, trajectory=trajectory + 1, return_dict=False)[0]
    assert (reference - moved).abs().max() > 1e-4
    repeated = model(**inputs, trajectory=trajectory, frame_repeat=torch.ones(2, 3), return_dict=False)[0]
    assert (reference - repeated).abs().max() > 1e-4
    # a trajectory given as waypoints [B, 4, 3] is flattened
    assert torch.equal(model(**inputs, trajectory=trajectory.reshape(2, 4, 3), return_dict=False)[0], reference)


def test_multiview_gradients_reach_every_new_parameter():
    _, model = _multiview_model(trajectory_dim=12, add_frame_repeat_embedding=True)
    model.train()
    inputs, trajectory = _inputs(views=3), torch.randn(2, 12)
    model(**inputs, trajectory=trajectory, return_dict=False)[0].square().mean().backward()
    columns = model.patch_embed.proj.weight.grad.reshape(24, -1, 4)[:, 5:5 + 3 + 3]
    assert columns.abs().sum() > 0  # the zero-initialised columns learn from the first step
    model.zero_grad()
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    out = model(**inputs, trajectory=trajectory, frame_repeat=torch.rand(2, 3), return_dict=False)[0]
    out.square().mean().backward()
    for module in (model.view_embeddings, model.trajectory_embedding, model.frame_repeat_embedding):
        for p in module.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_multiview_rejects_bad_inputs():
    _, model = _multiview_model(trajectory_dim=12)
    inputs = _inputs(views=3)
    trajectory = torch.zeros(2, 12)
    with pytest.raises(ValueError, match="not num_views \\(3\\) x frames per view"):
        model(**{**inputs, "hidden_states": inputs["hidden_states"][:, :, :5],
                 "condition_mask": inputs["condition_mask"][:, :, :5]}, trajectory=trajectory)
    with pytest.raises(ValueError, match="has 2 views, the model 3"):
        model(**{**inputs, "encoder_hidden_states": torch.zeros(2, 2, 5, 16)}, trajectory=trajectory)
    with pytest.raises(ValueError, match="\\[B, V\\*L, D\\]"):
        model(**{**inputs, "encoder_hidden_states": torch.zeros(2, 7, 16)}, trajectory=trajectory)
    with pytest.raises(ValueError, match="view_indices must be \\[num_views\\]"):
        model(**inputs, trajectory=trajectory, view_indices=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integers in \\[0, 2\\]"):
        model(**inputs, trajectory=trajectory, view_indices=torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="needs `trajectory`"):
        model(**inputs)
    with pytest.raises(ValueError, match="trajectory must have 12 values"):
        model(**inputs, trajectory=torch.zeros(2, 11))
    with pytest.raises(ValueError, match="NaN"):
        model(**inputs, trajectory=torch.full((2, 12), float("nan")))
    _, no_trajectory = _multiview_model()
    with pytest.raises(ValueError, match="trajectory_dim=0"):
        no_trajectory(**inputs, trajectory=trajectory)


def test_multiview_save_pretrained_round_trip(tmp_path):
    _, model = _multiview_model(trajectory_dim=12)
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    model.save_pretrained(tmp_path)
    loaded = CosmosMultiViewTransformer3DModel.from_pretrained(tmp_path)
    assert (loaded.config.in_channels, loaded.config.num_views, loaded.config.trajectory_embed_dim) == (5, 3, 3)
    inputs, trajectory = _inputs(views=3), torch.randn(2, 12)
    assert torch.equal(loaded(**inputs, trajectory=trajectory, return_dict=False)[0],
                       model(**inputs, trajectory=trajectory, return_dict=False)[0])


def test_multiview_folder_whose_config_contradicts_its_weights_is_refused(tmp_path):
    # config.json without the frame-repeat embedding the weights hold: diffusers only logged "weights not used" and
    # loaded a model that ignores frame_repeat (and a missing weight stayed on the meta device)
    import json

    from conftest import drop_saved_weights

    _, model = _multiview_model(add_frame_repeat_embedding=True, trajectory_dim=12)
    model.save_pretrained(tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "add_frame_repeat_embedding": False}))
    with pytest.raises(ValueError, match="2 unexpected: frame_repeat_embedding.bias, frame_repeat_embedding.weight"):
        CosmosMultiViewTransformer3DModel.from_pretrained(tmp_path)
    config_path.write_text(json.dumps(config))
    drop_saved_weights(tmp_path, "trajectory_embedding.bias")
    with pytest.raises(ValueError, match="1 missing: trajectory_embedding.bias"):
        CosmosMultiViewTransformer3DModel.from_pretrained(tmp_path)


def test_multiview_runs_in_bfloat16():
    base = tiny_transformer(video2world=True).to(torch.bfloat16)
    model = CosmosMultiViewTransformer3DModel.from_video2world(base, num_views=2, view_embed_dim=3)
    inputs = {k: (v.to(torch.bfloat16) if torch.is_tensor(v) else v) for k, v in _inputs(views=2).items()}
    out = model(**inputs, return_dict=False)[0]
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_sincos_extra_position_embedding_restarts_per_view(tmp_path):
    embed = CosmosMultiViewSinCosPositionalEmbed(hidden_size=24, max_size=(8, 8, 8), patch_size=(1, 2, 2), num_views=2)
    emb = embed(torch.zeros(1, 4, 6, 4, 6))  # 2 views x 3 frames, 2x3 patches
    assert emb.shape == (1, 2 * 3 * 2 * 3, 24)
    torch.testing.assert_close(emb[:, :18], emb[:, 18:])
    grid = emb[0, :18].reshape(3, 2, 3, 24)
    # channels [t (8) | h (8) | w (8)], each [sin | cos] of position * 10000^(-i / (d/2))
    t, i = 2, 1
    assert math.isclose(grid[t, 0, 0, i].item(), math.sin(t * 10000 ** (-i / 4)), abs_tol=1e-6)
    assert math.isclose(grid[t, 0, 0, 4 + i].item(), math.cos(t * 10000 ** (-i / 4)), abs_tol=1e-6)
    w = 2
    assert math.isclose(grid[0, 1, w, 16 + i].item(), math.sin(w * 10000 ** (-i / 4)), abs_tol=1e-6)
    model = CosmosMultiViewTransformer3DModel(**{**dict(tiny_transformer().config), "num_views": 2,
                                                 "view_embed_dim": 2, "extra_pos_embed_type": "sincos"})
    assert not any("learnable_pos_embed" in k for k in model.state_dict())
    # the table is recomputed on load (not stored), and the loaded model computes the same
    model.save_pretrained(tmp_path)
    loaded = CosmosMultiViewTransformer3DModel.from_pretrained(tmp_path)
    inputs = {**_inputs(views=2), "condition_mask": None}  # a Text2World-style model: no condition mask
    assert torch.equal(loaded(**inputs, return_dict=False)[0], model(**inputs, return_dict=False)[0])


def test_trajectory_normalisation_standardises_what_the_trajectory_layer_reads(tmp_path):
    from cosmos_hf.diffusion.multiview import trajectory_statistics

    paths = torch.randn(32, 4, 3) * torch.tensor([0.3, 0.05, 0.0]) + torch.tensor([1.0, 0.0, 0.0])
    mean, std = trajectory_statistics(paths)
    assert len(mean) == 12 and std[2::3] == [0.01] * 4  # a constant height keeps the 1 cm floor
    _, model = _multiview_model(trajectory_dim=12)
    with torch.no_grad():
        model.patch_embed.proj.weight.normal_()
    inputs = _inputs(views=3)
    trajectory = paths[:2].reshape(2, 12)
    raw = model(**inputs, trajectory=trajectory, return_dict=False)[0]
    model.set_trajectory_normalization(mean, std)
    normalised = model(**inputs, trajectory=trajectory, return_dict=False)[0]
    standardised = (trajectory - torch.tensor(mean)) / torch.tensor(std)
    model.register_to_config(trajectory_mean=None, trajectory_std=None)
    torch.testing.assert_close(model(**inputs, trajectory=standardised, return_dict=False)[0], normalised)
    assert not torch.allclose(normalised, raw)
    # saved with the model
    model.set_trajectory_normalization(mean, std)
    model.save_pretrained(tmp_path)
    loaded = CosmosMultiViewTransformer3DModel.from_pretrained(tmp_path)
    assert loaded.config.trajectory_std == model.config.trajectory_std
    assert torch.equal(loaded(**inputs, trajectory=trajectory, return_dict=False)[0], normalised)
    with pytest.raises(ValueError, match="need 12 values"):
        model.set_trajectory_normalization([0.0] * 11, [1.0] * 11)
    with pytest.raises(ValueError, match="finite and > 0"):
        model.set_trajectory_normalization([0.0] * 12, [1.0] * 11 + [0.0])
    with pytest.raises(ValueError, match="trajectory_dim=0"):
        _multiview_model()[1].set_trajectory_normalization([0.0], [1.0])
