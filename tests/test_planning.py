"""Closed-loop planning (issue #22): the steppable push environment reproduces the simulator, object positions read
off frames, the CEM-MPC loop with the simulator and with a tiny world model, policy evaluation in imagination, the
report folders and the two commands. Tiny sizes (32x32 frames, a few steps) keep each test to a few seconds."""

import json
import math

import numpy as np
import pytest

from cosmos_hf import cli
from cosmos_hf.planning import (
    CEMConfig,
    ObjectLocator,
    PushEnvironment,
    ScriptedPolicy,
    SimulatorRollout,
    WorldModelRollout,
    evaluate_policies,
    rank_correlation,
    realise_actions,
    run_episode,
)
from cosmos_hf.planning.mpc import ActionSampler, limit_speed, plan_cost
from cosmos_hf.planning.policy_evaluation import POLICIES
from cosmos_hf.sim.push import MAX_SPEED, simulate_push

SIZE = 32


def goal_actions(seed, num_frames):
    return simulate_push(seed=seed, num_frames=num_frames, height=SIZE, width=SIZE, policy="goal").extras["actions"]


def test_environment_steps_reproduce_simulate_push_frames_and_goal():
    seed, num_frames = 3, 8
    actions = goal_actions(seed, num_frames)
    replay = simulate_push(seed=seed, num_frames=num_frames, height=SIZE, width=SIZE, actions=actions)
    goal = simulate_push(seed=seed, num_frames=2, height=SIZE, width=SIZE, policy="goal")
    with PushEnvironment(seed, height=SIZE, width=SIZE) as env:
        assert env.goal.object_id == goal.extras["target_object_id"]
        np.testing.assert_allclose(env.goal.position, goal.extras["goal_object_positions"][env.goal.object_id - 1, :2],
                                   atol=1e-6)
        frames = [env.render()[0]]
        for action in actions:
            env.step(action)
            frames.append(env.render()[0])
        np.testing.assert_array_equal(np.stack(frames), replay.video)
        np.testing.assert_allclose(env.object_positions(), replay.object_positions[-1], atol=1e-6)


def test_restored_snapshot_branches_the_same_future():
    actions = goal_actions(1, 6)
    with PushEnvironment(1, height=SIZE, width=SIZE) as env:
        snapshot = env.save_state()
        for action in actions:
            env.step(action)
        first = env.object_positions().copy()
        env.restore_state(snapshot)
        for action in actions:
            env.step(action)
        # pybullet's restoreState leaves the contact solver's warm start as it was: micrometres apart, not bit-equal
        np.testing.assert_allclose(env.object_positions(), first, atol=1e-4)


def test_realised_actions_clip_to_the_workspace_like_the_simulator():
    with PushEnvironment(0, height=SIZE, width=SIZE) as env:
        start = env.ee_state.copy()
    pushes_down = np.tile([0.0, 0.0, 0.05, 0, 0, 0, 0.0], (5, 1))  # ee z points down: +z goes into the table
    states, realised = realise_actions(start, pushes_down)
    assert states[:, 2].min() >= 0.01 - 1e-12 and not np.allclose(realised, pushes_down)
    replay = simulate_push(seed=0, num_frames=6, height=SIZE, width=SIZE, actions=pushes_down)
    np.testing.assert_allclose(states, replay.extras["ee_states"], atol=1e-5)
    np.testing.assert_allclose(realised, replay.extras["actions"], atol=1e-5)


def test_object_locator_reads_the_goal_objects_position_off_simulator_frames():
    seed, num_frames = 3, 12
    record = simulate_push(seed=seed, num_frames=num_frames, height=64, width=64, policy="goal")
    with PushEnvironment(seed) as env:
        locator = ObjectLocator.from_environment(env)
        target = env.goal.object_id
    estimates = locator.locate(record.video)
    truth = record.object_positions[:, target - 1, :2]
    assert np.linalg.norm(truth[-1] - truth[0]) > 0.03  # the object really moved
    assert np.linalg.norm(estimates - truth, axis=1).max() < 0.03


def test_plan_cost_prefers_the_object_at_its_goal():
    with PushEnvironment(3) as env:
        frame, mask = env.render()
        locator = ObjectLocator.from_environment(env, frame, mask)
        position = env.object_positions()[env.goal.object_id - 1]
        body = env.world.objects[env.goal.object_id - 1].body
        _, orientation = env.world.client.getBasePositionAndOrientation(body)
        env.world.client.resetBasePositionAndOrientation(body, (*env.goal.position, position[2]), orientation)
        at_goal = env.render()[0]
        ee = np.repeat(env.ee_state[None, None], 2, axis=0)
        costs = plan_cost(locator, env.goal.position, position, ee, np.stack([frame, at_goal]), contact_weight=0.5)
    assert costs[1] < costs[0] - 0.08


def test_cem_config_refuses_inconsistent_budgets():
    with pytest.raises(ValueError, match="execute_steps"):
        CEMConfig(horizon=8, execute_steps=9)
    with pytest.raises(ValueError, match="num_elites"):
        CEMConfig(population=2, num_elites=3)
    with pytest.raises(ValueError, match="multiple of action_repeat"):
        CEMConfig(horizon=10, action_repeat=4)
    with pytest.raises(ValueError, match="population"):
        CEMConfig(population=0)


@pytest.mark.parametrize("bad", [
    {"action_std": (math.nan, 0.02, 0.02, 0, 0, 0, 0)},  # NaN actions: every cost NaN, no best plan (a TypeError)
    {"action_std": (math.inf, 0.02, 0.02, 0, 0, 0, 0)},
    {"contact_weight": math.nan},
    {"contact_weight": -0.5},  # silently rewarded staying away from the pre-push point
    {"min_std": math.nan},
    {"min_std": -0.1},
    {"gripper": math.nan},  # NaN gripper commands reached the simulator
    {"gripper": 1.5},
])
def test_cem_config_refuses_non_finite_or_out_of_range_numbers(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"CEMConfig.{name}"):
        CEMConfig(**bad)


def test_sampled_actions_respect_the_top_speed_and_hold_each_knot():
    config = CEMConfig(horizon=8, action_repeat=4, action_std=(0.5, 0.5, 0.5, 0, 0, 0, 0))
    sampler = ActionSampler(config, fps=8.0)
    knots, actions = sampler.sample(np.random.default_rng(0), 16)
    assert knots.shape == (16, 2, 7) and actions.shape == (16, 8, 7)
    assert np.linalg.norm(actions[..., :3], axis=-1).max() <= MAX_SPEED / 8.0 + 1e-9
    np.testing.assert_array_equal(actions[:, 0], actions[:, 3])
    np.testing.assert_allclose(limit_speed([[0.01, 0, 0, 0, 0, 0, 1]], 8.0), [[0.01, 0, 0, 0, 0, 0, 1]])


def test_mpc_with_the_simulator_as_model_pushes_the_object_toward_its_goal():
    config = CEMConfig(horizon=8, execute_steps=8, population=6, num_elites=2, iterations=2)
    with PushEnvironment(3, height=SIZE, width=SIZE) as env:
        planned = run_episode(env, SimulatorRollout(), config, 16, np.random.default_rng(3), record_frames=True)
    with PushEnvironment(3, height=SIZE, width=SIZE) as env:
        random = run_episode(env, None, config, 16, np.random.default_rng(3))
    assert planned.replans == 2 and planned.steps == 16 and len(planned.real_frames) == 17
    assert planned.final_distance < planned.initial_distance - 0.03
    assert planned.final_distance < random.final_distance


@pytest.fixture(scope="module")
def tiny_action_pipeline(tiny_video2world_folder):
    from test_pipelines_action_conditioned import action_pipeline

    return action_pipeline(tiny_video2world_folder)[0]


def test_world_model_rollout_batches_candidates_and_mpc_records_imagined_frames(tiny_action_pipeline):
    model = WorldModelRollout(tiny_action_pipeline, num_inference_steps=1)
    config = CEMConfig(horizon=8, execute_steps=4, population=3, num_elites=1, iterations=1)
    with PushEnvironment(2, height=SIZE, width=SIZE) as env:
        frame = env.render()[0]
        frames = model(env, frame, np.zeros((3, 8, 7)))
        assert frames.shape == (3, 9, SIZE, SIZE, 3) and frames.dtype == np.uint8
        result = run_episode(env, model, config, 8, np.random.default_rng(0), record_frames=True)
    assert result.replans == 2 and result.planning_seconds > 0
    assert result.imagined_frames.shape == result.real_frames.shape == (9, SIZE, SIZE, 3)
    np.testing.assert_array_equal(result.imagined_frames[0], result.real_frames[0])


def test_world_model_frames_of_another_size_than_the_environments_are_refused(tiny_action_pipeline):
    # the pipeline resizes the 48x48 frame to its own 32x32; the locator, calibrated on 48x48 frames with their
    # intrinsics, then read object positions off 32x32 predictions: costs and imagined successes silently wrong
    model = WorldModelRollout(tiny_action_pipeline, num_inference_steps=1)
    with PushEnvironment(2, height=48, width=48) as env:
        with pytest.raises(ValueError, match=r"32x32 frames.*renders 48x48"):
            model(env, env.render()[0], np.zeros((2, 8, 7)))
    with pytest.raises(ValueError, match=r"32x32 frames.*renders 48x48"):
        evaluate_policies(model, [3], num_steps=8, policies=POLICIES[:2], image_size=48)


def test_scripted_push_beats_pushing_away_and_a_perfect_imagination_agrees():
    policies = (ScriptedPolicy("push to the goal"), ScriptedPolicy("push away", angle_error_deg=180))
    report, videos = evaluate_policies(SimulatorRollout(), [3], num_steps=32, policies=policies, image_size=SIZE)
    real = np.asarray(report["final_distance_m"]["real"])[:, 0]
    imagined = np.asarray(report["final_distance_m"]["imagined"])[:, 0]
    with PushEnvironment(3, height=SIZE, width=SIZE) as env:
        initial = env.goal_distance()
    assert real[0] < initial - 0.08 and real[1] > initial + 0.05
    np.testing.assert_allclose(imagined, real, atol=0.03)
    assert report["policies"][1]["real_success_rate"] == report["policies"][1]["imagined_success_rate"] == 0.0
    assert videos[3][0].shape == (2, 33, SIZE, SIZE, 3)


def test_rank_correlation_is_spearman_and_undefined_for_constant_scores():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks: (1, 2.5, 2.5, 4) against (1, 3, 2, 4), Pearson's r of the ranks = 4.5 / sqrt(4.5 * 5)
    assert rank_correlation([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(rank_correlation([0, 0, 0], [1, 2, 3]))
    with pytest.raises(ValueError, match="equally long"):
        rank_correlation([1, 2], [1, 2, 3])


def test_plan_command_writes_a_report_folder(tmp_path, tiny_action_pipeline):
    model_dir = tmp_path / "tiny_action"
    tiny_action_pipeline.save_pretrained(model_dir)
    out = tmp_path / "plan"
    code = cli.main(["plan", "--out", str(out), "--model", str(model_dir), "--goals", "1", "--first-seed", "3",
                     "--steps", "4", "--horizon", "8", "--execute-steps", "4", "--population", "2", "--elites", "1",
                     "--iterations", "1", "--sampling-steps", "1", "--videos", "1", "--quiet"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) == {"world-model", "simulator", "random"} and report["image_size"] == SIZE
    assert len(report["episodes"]) == 3 and all(e["steps"] == 4 for e in report["episodes"])
    assert (out / "success.png").stat().st_size > 0 and (out / "mpc_3.mp4").stat().st_size > 0
    assert not list(out.glob(".*tmp*"))


def test_commands_refuse_bad_methods_and_missing_models(tmp_path, capsys):
    assert cli.main(["plan", "--out", str(tmp_path / "a"), "--methods", "oracle"]) == 2
    assert "methods must be a non-empty subset" in capsys.readouterr().err
    assert cli.main(["evaluate-policies", "--out", str(tmp_path / "b"), "--model", str(tmp_path)]) == 2
    assert "not a pipeline folder" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_world_model_plans_do_not_depend_on_the_episodes_run_before(tiny_action_pipeline):
    # `cosmos-hf plan --jobs N` hands goals to processes in any order: a goal's result must not depend on it
    model = WorldModelRollout(tiny_action_pipeline, num_inference_steps=1)
    config = CEMConfig(horizon=8, execute_steps=4, population=2, num_elites=1, iterations=2)

    def final_positions(seeds):
        out = {}
        for seed in seeds:
            with PushEnvironment(seed, height=SIZE, width=SIZE) as env:
                run_episode(env, model, config, 4, np.random.default_rng(seed))
                out[seed] = env.object_positions()
        return out

    alone = final_positions([5])[5]
    after_others = final_positions([2, 5, 5])[5]
    np.testing.assert_array_equal(alone, after_others)


def test_policy_plot_handles_an_undefined_rank_correlation(tmp_path):
    # a world model that never imagines a success gives a constant imagined success rate: rho is undefined (None)
    from cosmos_hf.planning.experiments import _plot_policies

    rows = [{"policy": name, "real_success_rate": real, "imagined_success_rate": 0.0,
             "real_mean_final_distance_m": 0.1 + real, "imagined_mean_final_distance_m": 0.2} for name, real in
            (("a", 0.5), ("b", 0.0))]
    _plot_policies({"policies": rows, "spearman_success_rate": None, "spearman_mean_final_distance": None},
                   tmp_path / "ranking.png")
    assert (tmp_path / "ranking.png").stat().st_size > 0


def test_the_space_push_tab_uses_the_world_model_and_task_settings_the_planner_defaults_to(monkeypatch):
    import importlib.util
    from pathlib import Path

    pytest.importorskip("gradio", reason="the Space needs gradio: pip install -e '.[space]'")
    from cosmos_hf.planning.experiments import BUNDLED_ACTION_MODEL

    monkeypatch.delenv("COSMOS_NANO_PIPELINES", raising=False)
    app_path = Path(__file__).resolve().parents[1] / "spaces" / "cosmos-nano" / "app.py"
    spec = importlib.util.spec_from_file_location("cosmos_nano_space_app_for_planning", app_path)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert (app.PIPELINES_DIR / app.PIPELINE_FOLDERS["action"]).resolve() == BUNDLED_ACTION_MODEL.resolve()
    with PushEnvironment(0) as env:
        assert (env.fps, env.height) == (app.PUSH_FPS, app.SIZE)
    assert app.PUSH_VIEW == 0  # PushEnvironment's default view
