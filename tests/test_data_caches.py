"""The diffusion latent cache (`latent_cache_key`): a cache made from other clips is refused, never trained on."""

import pytest
import torch

from cosmos_hf.data import PhysicsWorldDataset, latent_cache_key, load_tensor_cache, save_tensor_cache


def _config(**data):
    data = {"type": "physics", "num_clips": 16, "seed_offset": 0, "num_frames": 3, "height": 16, "width": 16,
            "fps": 12.0, "frame_stride": 1, **data}
    return {"model": {"vae": "tiny-vae", "text_encoder": "tiny-t5", "max_sequence_length": 8}, "data": data}


def test_latent_cache_of_other_physics_views_is_refused(tmp_path):
    # data.views picks each physics clip's camera: with 8 scenes, clip 8 is view 0 for views [0] and view 1 for
    # views [0, 1, 2, 3], so a cache encoded for one was other clips for the other
    one_view = PhysicsWorldDataset(16, 2, 16, 16, 12.0, views=[0])
    four_views = PhysicsWorldDataset(16, 2, 16, 16, 12.0, views=[0, 1, 2, 3])
    assert not torch.equal(one_view[8]["video"], four_views[8]["video"])

    path = tmp_path / "latent_cache.safetensors"
    save_tensor_cache(path, {"latents": torch.zeros(16, 4)}, latent_cache_key(_config(views=[0])))
    with pytest.raises(ValueError, match="views"):
        load_tensor_cache(path, latent_cache_key(_config(views=[0, 1, 2, 3])), what="data or encoders")
    # unset views is the physics dataset's default [0]: the same clips, the same cache
    assert load_tensor_cache(path, latent_cache_key(_config()), what="data or encoders") is not None
    # views only choose physics clips: a folder run's key is what it was, so its caches stay valid
    assert "views" not in latent_cache_key(_config(type="folder", path="videos", views=[0, 1]))


def test_latent_cache_of_changed_folder_videos_or_a_re_exported_archive_is_refused(tmp_path):
    """The path alone keyed folder and clip-archive caches: new captions, another video, or an archive written again
    at the same path with other clips reused the stale latents."""
    import os

    folder = tmp_path / "data"
    (folder / "videos").mkdir(parents=True)
    (folder / "metas").mkdir()
    (folder / "videos" / "a.mp4").write_bytes(b"not decoded by the key")
    (folder / "metas" / "a.txt").write_text("a red cube falls")
    config = _config(type="folder", path=str(folder))
    path = tmp_path / "latent_cache.safetensors"
    save_tensor_cache(path, {"latents": torch.zeros(1, 4)}, latent_cache_key(config))
    assert load_tensor_cache(path, latent_cache_key(config), what="data or encoders") is not None  # unchanged
    (folder / "metas" / "a.txt").write_text("a blue ball rolls")  # other caption, same path
    with pytest.raises(ValueError, match="files: cache"):
        load_tensor_cache(path, latent_cache_key(config), what="data or encoders")

    archive = tmp_path / "clips.npz"
    archive.write_bytes(b"first export")
    clips = _config(type="clips", path=str(archive))
    save_tensor_cache(path, {"latents": torch.zeros(1, 4)}, latent_cache_key(clips))
    assert load_tensor_cache(path, latent_cache_key(clips), what="data or encoders") is not None
    archive.write_bytes(b"second export")
    os.utime(archive, ns=(archive.stat().st_atime_ns, archive.stat().st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="files: cache"):
        load_tensor_cache(path, latent_cache_key(clips), what="data or encoders")
