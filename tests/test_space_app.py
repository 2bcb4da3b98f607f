"""The Gradio Space (spaces/cosmos-nano/app.py) with the bundled nano pipelines, served on a loopback port:

- as a person uses it: headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download)
  picks a scene, clicks Generate and waits for a playable video; a screenshot is saved (to the path in
  COSMOS_HF_SPACE_SCREENSHOT when set: `make space-screenshot` writes docs/images/space.png this way);
- through its API with gradio_client: the returned videos have the models' shape, and bad input (a blocked prompt,
  an upload that is not a video) comes back as a readable error message, not a stack trace.

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


@pytest.fixture(scope="module")
def app():
    module = load_app()
    if not (module.PIPELINES_DIR / module.PIPELINE_FOLDERS["video2world"] / "model_index.json").is_file():
        pytest.skip(f"bundled nano pipelines not found in {module.PIPELINES_DIR}")
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
        finally:
            browser.close()
    assert state["src"] and state["readyState"] >= 1 and state["duration"] > 0, state
    assert screenshot.stat().st_size > 10_000


def test_every_tab_is_wired_to_an_api_action(app):
    # each tab's button calls a named endpoint (the gradio_client API); post-training tabs join TABS only when their
    # pipelines exist
    demo = app.build_demo(default_steps=STEPS)
    names = {dep.api_name for dep in demo.fns.values() if dep.api_name}
    assert names >= {"video2world", "text2world", "ar_video2world", "tokenizers"}
    assert [title for title, _ in app.TABS] == ["Video2World", "Text2World", "AR Video2World (Medusa)", "Tokenizers"]
