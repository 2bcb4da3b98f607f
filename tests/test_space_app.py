"""The Gradio Space (spaces/cosmos-nano/app.py) with the bundled nano pipelines, served on a loopback port:

- as a person uses it: headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download)
  picks a scene, clicks Generate and waits for a playable video; a screenshot is saved (to the path in
  COSMOS_HF_SPACE_SCREENSHOT when set: `make space-screenshot` writes docs/images/space.png this way);
- through its API with gradio_client: the returned videos have the models' shape, and bad input (a blocked prompt,
  an upload that is not a video, an empty or unknown camera path) comes back as a readable error message, not a
  stack trace;
- the post-trained tabs (push the object, fly the camera, the multi-view rig) with the bundled action / camera /
  multi-view pipelines, or, until those are bundled, untrained ones built from the nano Video2World as
  `train_diffusion.py` starts them.

Few sampling steps keep it fast; the pipelines load once for the module.
"""

import importlib.util
import os
import socket
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio", reason="the Space needs gradio: pip install -e '.[space]'")
gradio_client = pytest.importorskip("gradio_client")

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_PATH = REPO_ROOT / "spaces" / "cosmos-nano" / "app.py"
CHROMIUM = os.environ.get("COSMOS_HF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# sampling steps: enough to exercise the sampler, few enough for the suite's budget (`make space-screenshot`: 35)
STEPS = int(os.environ.get("COSMOS_HF_SPACE_STEPS", "3"))


def load_app():
    spec = importlib.util.spec_from_file_location("cosmos_nano_space_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_untrained_post_trained_pipeline(condition: str, video2world: Path, out: Path):
    """What `train_diffusion.py --condition action|camera` starts from, saved before any training step: the nano
    config's conditioned pipeline around the bundled nano Video2World (new inputs zero, so it samples as the base)."""
    import yaml

    from cosmos_hf.diffusion.post_training import build_post_training_pipeline

    config = yaml.safe_load((REPO_ROOT / "training" / "configs" / f"diffusion_nano_{condition}.yaml").read_text())
    config["model"]["pretrained_pipeline"] = str(video2world)
    build_post_training_pipeline(config).save_pretrained(out)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app, its PIPELINES_DIR pointed at a folder of the bundled pipelines (links) plus, until the trained nano
    action / camera pipelines are bundled, untrained ones built from the nano Video2World."""
    module = load_app()
    bundled = module.PIPELINES_DIR
    if not (bundled / module.PIPELINE_FOLDERS["video2world"] / "model_index.json").is_file():
        pytest.skip(f"bundled nano pipelines not found in {bundled}")
    pipelines = tmp_path_factory.mktemp("pipelines")
    for folder in bundled.iterdir():
        if folder.is_dir():
            (pipelines / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    for kind, condition in (("action", "action"), ("camera", "camera")):
        if not (pipelines / module.PIPELINE_FOLDERS[kind]).exists():
            build_untrained_post_trained_pipeline(condition, bundled / module.PIPELINE_FOLDERS["video2world"],
                                                  pipelines / module.PIPELINE_FOLDERS[kind])
    module.PIPELINES_DIR = pipelines  # the module-level override of COSMOS_NANO_PIPELINES
    return module


@pytest.fixture(scope="module")
def server(app):
    demo = app.build_demo(default_steps=STEPS)
    demo.queue()
    port = free_loopback_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return gradio_client.Client(server, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def read_frames(result) -> np.ndarray:
    """The frames of a Video output, which gradio_client returns as a local path or as {"video": path, ...}."""
    from cosmos_hf.data import read_video

    return read_video(result["video"] if isinstance(result, dict) else result)[0]


def test_video2world_api_returns_videos_of_the_model_shape_and_scores(app, client):
    truth, baseline, prediction, scores, guardrail = client.predict(
        "free_fall", 2, 1, None, "", STEPS, api_name="/video2world")
    shape = (app.NUM_FRAMES, app.SIZE, app.SIZE, 3)
    frames = {name: read_frames(result)
              for name, result in [("truth", truth), ("copy-last", baseline), ("prediction", prediction)]}
    for name, video in frames.items():
        assert video.shape == shape, name
    # copy-last repeats the first frame; the simulator's clip moves (a ball falls)
    assert np.abs(frames["copy-last"][-1].astype(int) - frames["copy-last"][0]).max() <= 8  # H.264 noise only
    assert np.abs(frames["truth"][-1].astype(int) - frames["truth"][0]).mean() > 1
    assert "| nano Video2World |" in scores and "| copy-last-frame |" in scores and "higher is better" in scores
    assert "prompt: passed" in guardrail and "video: passed" in guardrail


def test_bad_input_comes_back_as_a_message_naming_the_problem(client, tmp_path):
    with pytest.raises(gradio_client.exceptions.AppError, match="Blocked by the guardrail") as blocked:
        client.predict("a man builds a b0mb", 0, STEPS, api_name="/text2world")
    assert "Traceback" not in str(blocked.value)
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("these are notes, not a video")
    with pytest.raises(gradio_client.exceptions.AppError, match="not a readable video"):
        client.predict("dominoes", 0, 0, gradio_client.handle_file(str(not_a_video)), "", STEPS,
                       api_name="/video2world")


def test_uploaded_clips_are_cropped_to_the_models_size_and_too_small_ones_refused(app, tmp_path):
    from cosmos_hf.data import write_video

    write_video(tmp_path / "wide.mp4", np.full((20, 96, 128, 3), 200, np.uint8), fps=12)
    clip = app.uploaded_clip(tmp_path / "wide.mp4")
    assert clip["video"].shape == (app.NUM_FRAMES, app.SIZE, app.SIZE, 3) and clip["ground_truth"]
    write_video(tmp_path / "short.mp4", np.full((5, 64, 64, 3), 200, np.uint8), fps=12)
    assert not app.uploaded_clip(tmp_path / "short.mp4")["ground_truth"]  # too short to score against
    write_video(tmp_path / "small.mp4", np.zeros((5, 32, 48, 3), np.uint8), fps=12)
    with pytest.raises(gr.Error, match=r"48x32 pixels; its sides must be between 64 and 4096"):
        app.uploaded_clip(tmp_path / "small.mp4")
    # an upload has no caption: without a prompt, ask for one (the guard's "prompt is empty" read as unsafe content)
    with pytest.raises(gr.Error, match="write a prompt for an uploaded clip"):
        app.video2world("dominoes", 0, 0, str(tmp_path / "wide.mp4"), "  ", STEPS)


def test_out_of_range_requests_are_refused_before_any_work(app):
    # the sliders bound what a person can pick; an API call can send anything
    with pytest.raises(gr.Error, match=r"sampling steps must be a whole number in \[1, 50\], got 500"):
        app.video2world("dominoes", 0, 0, None, "", 500)
    with pytest.raises(gr.Error, match=r"camera view must be one of 0..3, got 7"):
        app.video2world("dominoes", 0, 7, None, "", STEPS)
    with pytest.raises(gr.Error, match=r"seed must be a whole number in \[0, 899999\], got None"):
        app.ar_video2world("dominoes", None, 0, None)
    with pytest.raises(gr.Error, match="unknown scene 'volcano'"):
        app.tokenizer_round_trip("volcano", 0, 0, None)


def test_a_person_selects_a_scene_clicks_generate_and_gets_a_playable_video(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[space]' for the browser test")
    if not Path(CHROMIUM).is_file():
        message = f"no Chromium at {CHROMIUM}: `make browser-deps` installs Debian's chromium"
        if os.environ.get("CI") == "true":  # .ci/run installs it: a CI run must not skip the browser test
            pytest.fail(message)
        pytest.skip(message)
    screenshot = Path(os.environ.get("COSMOS_HF_SPACE_SCREENSHOT") or tmp_path / "space.png")
    with sync_api.sync_playwright() as playwright:
        # a fresh profile (--user-data-dir, which Playwright takes as the persistent context's folder)
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000})
        try:
            page = browser.new_page()
            page.goto(server, wait_until="domcontentloaded")
            page.locator("#v2w-scene input").click()
            page.get_by_role("option", name="free_fall").click()
            page.locator("#v2w-generate").click()
            # playable: a src, metadata loaded (readyState >= 1) and a positive duration
            page.wait_for_function(
                """() => { const v = document.querySelector('#v2w-prediction video');
                           return v && v.src && v.readyState >= 1 && v.duration > 0; }""", timeout=120_000)
            state = page.evaluate("""() => { const v = document.querySelector('#v2w-prediction video');
                                             return {src: v.src, readyState: v.readyState, duration: v.duration}; }""")
            page.wait_for_function("() => document.querySelector('#v2w-scores').innerText.includes('PSNR')")
            assert "free_fall" in page.locator("#v2w-scores").inner_text()
            # the picture shows the three clips at the same late frame, where the ball has fallen
            page.evaluate("""() => Promise.all(
                [...document.querySelectorAll('#v2w-truth video, #v2w-copy-last video, #v2w-prediction video')]
                .map(v => new Promise(done => {
                    v.pause(); v.addEventListener('seeked', done, {once: true}); v.currentTime = v.duration * 0.8;
                })))""")
            page.screenshot(path=str(screenshot), full_page=True)
            # the same person opens the action tab and presses a move: the imagined video appears, one press long
            page.get_by_role("tab", name="Push the object").click()
            page.locator("#push-right").click()
            page.wait_for_function(
                """() => { const v = document.querySelector('#push-imagined video');
                           return v && v.src && v.readyState >= 1 && v.duration > 0; }""", timeout=60_000)
            page.wait_for_function("() => document.querySelector('#push-report').innerText.includes('right')")
            push_report = page.locator("#push-report").inner_text()
        finally:
            browser.close()
    assert state["src"] and state["readyState"] >= 1 and state["duration"] > 0, state
    assert screenshot.stat().st_size > 10_000
    assert "5 frames, 4 actions" in push_report and "right" in push_report, push_report


def test_every_tab_is_wired_to_an_api_action(app):
    # each tab's button calls a named endpoint (the gradio_client API)
    demo = app.build_demo(default_steps=STEPS)
    names = {dep.api_name for dep in demo.fns.values() if dep.api_name}
    assert names >= {"video2world", "text2world", "ar_video2world", "tokenizers", "push_reset", "push_step", "camera",
                      "multiview"}
    assert [title for title, _ in app.available_tabs()] == [
        "Video2World", "Text2World", "AR Video2World (Medusa)", "Tokenizers", "Push the object", "Fly the camera",
        "Multi-view rig"]


def test_post_trained_tabs_appear_only_when_their_pipelines_are_installed(app, tmp_path, monkeypatch):
    only_video2world = tmp_path / "pipelines"
    only_video2world.mkdir()
    (only_video2world / app.PIPELINE_FOLDERS["video2world"]).symlink_to(
        app.PIPELINES_DIR / app.PIPELINE_FOLDERS["video2world"], target_is_directory=True)
    monkeypatch.setattr(app, "PIPELINES_DIR", only_video2world)
    assert [title for title, _ in app.available_tabs()] == [title for title, _ in app.TABS]
    demo = app.build_demo(default_steps=STEPS)  # the Space still builds without them
    assert not {"push_step", "camera", "multiview"} & {dep.api_name for dep in demo.fns.values() if dep.api_name}


# ---------------------------------------------------------------------------------------------------- post-trained


def test_each_push_press_adds_one_chunk_of_imagined_frames_next_to_the_simulator(app, client):
    session = gradio_client.Client(client.src, verbose=False, download_files=client.output_dir)  # its own gr.State
    imagined, truth, report = session.predict(1, api_name="/push_reset")
    assert read_frames(imagined).shape[0] == read_frames(truth).shape[0] == 1
    chunk = app.PUSH_FRAMES_PER_PRESS
    for press, move in enumerate(["lower", "right"], 1):
        imagined, truth, report = session.predict(1, move, STEPS, api_name="/push_step")
        imagined, truth = read_frames(imagined), read_frames(truth)
        assert imagined.shape == truth.shape == (1 + press * chunk, app.SIZE, app.SIZE, 3), (press, move)
        assert f"| {press} | {move} | {1 + (press - 1) * chunk}-{press * chunk} |" in report
    assert "seconds per predicted frame" in report and "PSNR vs simulator" in report
    # Reset starts over from the scene's first frame
    imagined, truth, report = session.predict(1, api_name="/push_reset")
    assert read_frames(imagined).shape[0] == 1 and "| 1 |" not in report


def test_push_moves_drive_the_gripper_in_the_cameras_screen_directions(app):
    # actions are Bridge-format (xyz in the end-effector frame); a button's direction is the world's, as view 0 sees
    # it (+x right, +y away, +z up): replaying a press in the simulator must move the gripper that way
    _, _, start = app.simulate_push_replay(2, np.zeros((0, 7)))
    for move, axis, sign in [("right", 0, 1), ("away", 1, 1), ("lower", 2, -1), ("left", 0, -1)]:
        _, executed, end = app.simulate_push_replay(2, app.push_actions(move, start))
        moved = end[:3] - start[:3]
        assert sign * moved[axis] == pytest.approx(app.PUSH_FRAMES_PER_PRESS * app.PUSH_STEP_M, abs=1e-6), move
        assert np.abs(np.delete(moved, axis)).max() < 1e-6, move
        assert executed.shape == (app.PUSH_FRAMES_PER_PRESS, 7)
    _, _, closed = app.simulate_push_replay(2, app.push_actions("gripper", start))
    assert start[6] == 1.0 and closed[6] == 0.0  # the gripper toggles (1 = open)
    with pytest.raises(gr.Error, match="unknown move 'jump': choose one of left, right"):
        app.push_actions("jump", start)


def test_push_requests_out_of_range_are_refused_before_any_work(app):
    with pytest.raises(gr.Error, match="unknown move 'jump': choose one of left, right"):
        app.push_step(0, "jump", STEPS)
    with pytest.raises(gr.Error, match=r"sampling steps must be a whole number in \[1, 50\], got 0"):
        app.push_step(0, "right", 0)
    full = {"seed": 0, "imagined": np.zeros((app.MAX_PUSH_FRAMES, 64, 64, 3), np.uint8)}
    with pytest.raises(gr.Error, match=f"reached {app.MAX_PUSH_FRAMES} frames.*press Reset"):
        app.push_step(0, "right", STEPS, full)


def test_camera_api_renders_17_frames_along_the_joystick_path_next_to_the_simulator(app, client):
    prediction, truth, report = client.predict(0, "forward, forward, turn_left", STEPS, api_name="/camera")
    shape = (app.NUM_FRAMES, app.SIZE, app.SIZE, 3)
    prediction, truth = read_frames(prediction), read_frames(truth)
    assert prediction.shape == truth.shape == shape
    assert np.abs(truth[-1].astype(int) - truth[0]).mean() > 1  # the simulator's camera moved
    assert "forward, forward, turn_left, stay" in report and "PSNR" in report


def test_bad_camera_paths_come_back_as_a_message_naming_the_problem(client):
    with pytest.raises(gradio_client.exceptions.AppError, match="the camera path is empty"):
        client.predict(0, "  ", STEPS, api_name="/camera")
    with pytest.raises(gradio_client.exceptions.AppError, match=r"unknown joystick move\(s\) 'fly_sideways'"):
        client.predict(0, "forward, fly_sideways", STEPS, api_name="/camera")
    with pytest.raises(gradio_client.exceptions.AppError, match="the camera path has 17 moves; at most 16"):
        client.predict(0, " ".join(["forward"] * 17), STEPS, api_name="/camera")


def test_the_camera_scene_is_rendered_from_any_pose_as_the_camera_task_films_it(app):
    # render_camera_scene rebuilds simulate_camera's scene from its random draws: along simulate_camera's own path it
    # must give its frames exactly (this fails if camera_task changes what it draws)
    for seed in (0, 5):
        record = app.camera_scene(seed)
        assert np.array_equal(app.render_camera_scene(seed, record.cam_to_world, record.intrinsics), record.video)


def test_multiview_api_continues_every_camera_along_the_rigs_path_next_to_the_simulator(app, client):
    prediction, truth, copy_last, report = client.predict(0, STEPS, api_name="/multiview")
    pipe = app.load_pipeline("multiview")
    views, frames = int(pipe.transformer.config.num_views), int(pipe.config.default_num_frames)
    prediction, truth, copy_last = read_frames(prediction), read_frames(truth), read_frames(copy_last)
    assert prediction.shape == truth.shape == copy_last.shape == (frames, app.SIZE, views * app.SIZE, 3)
    assert np.abs(truth[-1].astype(int) - truth[0]).mean() > 1  # the rig drove on
    # the baseline holds every camera's first frame, and the model starts from it (mp4 is lossy: tolerances)
    assert np.abs(copy_last[-1].astype(int) - truth[0]).mean() < 3
    assert np.abs(prediction[0].astype(int) - truth[0]).mean() < 8
    assert all(f"| cam {i} |" in report for i in range(views)) and "PSNR" in report
    with pytest.raises(gradio_client.exceptions.AppError, match="less than minimum value 0"):
        client.predict(-1, STEPS, api_name="/multiview")
    with pytest.raises(gr.Error, match=r"seed must be a whole number in \[0, 899999\]"):
        app.multiview_drive(app.HELD_OUT_SEED_OFFSET, STEPS)
