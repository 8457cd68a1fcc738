"""The Ray pool on a local Ray cluster (CPU only): the Shapes experts and the tiny diffusers
experts as Ray Serve deployments give exactly the local pool's results, several env
workers share one pool, batches are formed, and a pool that does not answer truncates the
step instead of hanging."""

from __future__ import annotations

import socket
import sys
import threading
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import poser_env  # noqa: F401 - registers the ids
from poser_env import Expert, ExpertResult
from poser_env.error import ConfigError, PoolError
from poser_env.suites import make_suite

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
from ray import cloudpickle  # noqa: E402

from poser_env.pools.ray_pool import RayPool, describe, run_batch  # noqa: E402

# The helper experts below are defined in this test module, which Ray's workers cannot
# import: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

EXPERTS = ["sketch-turbo", "count-master", "object-adder", "recolorist"]


@pytest.fixture(scope="module")
def ray_address():
    assert not ray.is_initialized()
    ray.init(
        num_cpus=2,
        num_gpus=1,  # a logical GPU (none is there): Ray assigns it and sets CUDA_VISIBLE_DEVICES
        object_store_memory=256 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        namespace="image-poser",
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        serve.shutdown()
        ray.shutdown()


def ray_env(address, **kwargs):
    """``gym.make`` with the Ray pool on the test cluster; ``pool_kwargs`` entries merge in."""
    pool_kwargs = {"address": address, "timeout_s": 60, **kwargs.pop("pool_kwargs", {})}
    return gym.make("ImagePoser-v0", pool="ray", pool_kwargs=pool_kwargs, **kwargs)


def rollout(env, seed, steps=10):
    """Mask-respecting actions from a seeded generator; everything the agent would see."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    out = [(obs["command"], obs["image"].tobytes(), info.get("error"))]
    for _ in range(steps):
        a = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
        obs, r, term, trunc, info = env.step(a)
        out.append(
            (
                a,
                r,
                term,
                trunc,
                obs["image"].tobytes(),
                obs["feedback"],
                info["error"],
                info.get("verdict"),
            )
        )
        if term or trunc:
            obs, info = env.reset()
            out.append((obs["command"], obs["image"].tobytes()))
    return out


def test_ray_pool_gives_the_local_pool_results(ray_address):
    pooled = ray_env(ray_address, experts=EXPERTS)
    local = gym.make("ImagePoser-v0", experts=EXPERTS)
    suite = pooled.unwrapped.suite
    assert [type(e).__name__ for e in suite.experts] == ["RayExpert"] * 4
    assert type(suite.critic).__name__ == "RayCritic"
    assert suite.expert_names == local.unwrapped.suite.expert_names
    # Stand-ins keep the cache identity, so a cache filled by either pool serves both.
    assert [e.cache_identity() for e in suite.experts] == [
        e.cache_identity() for e in local.unwrapped.suite.experts
    ]
    for seed in (0, 1, 2):
        assert rollout(pooled, seed) == rollout(local, seed)
    manifest = describe(suite.experts[0].app_name, address=ray_address)
    assert manifest["suite"] == "shapes" and list(manifest["experts"]) == EXPERTS
    # A pickled env (what a vector-env worker receives) reconnects by itself.
    import pickle

    copy = pickle.loads(pickle.dumps(pooled.unwrapped))
    assert rollout(copy, 3) == rollout(local, 3)


def test_async_vector_workers_share_one_pool(ray_address):
    before = set(serve.status().applications)
    kwargs = {
        "experts": EXPERTS,
        "pool": "ray",
        "pool_kwargs": {"address": ray_address, "timeout_s": 60},
    }
    venv = gym.make_vec(
        "ImagePoser-v0",
        num_envs=2,
        vectorization_mode="async",
        vector_kwargs={"context": "spawn", "shared_memory": False},
        **kwargs,
    )
    sync = gym.make_vec("ImagePoser-v0", num_envs=2, vectorization_mode="sync", experts=EXPERTS)
    try:
        seeds = [11, 12]
        o1, _ = venv.reset(seed=seeds)
        o2, _ = sync.reset(seed=seeds)
        for t in range(8):
            actions = np.array(
                [
                    int(
                        np.flatnonzero(o2["action_mask"][i])[
                            (t + i) % int(o2["action_mask"][i].sum())
                        ]
                    )
                    for i in range(2)
                ]
            )
            o1, r1, te1, tr1, i1 = venv.step(actions)
            o2, r2, te2, tr2, _ = sync.step(actions)
            assert np.array_equal(o1["image"], o2["image"]) and list(o1["command"]) == list(
                o2["command"]
            )
            assert np.array_equal(r1, r2) and np.array_equal(te1, te2) and np.array_equal(tr1, tr2)
            assert not any(i1["error"]), i1["error"]
    finally:
        venv.close()
        sync.close()
    # Both workers (and the driver's dummy env) used the application the first test deployed.
    assert set(serve.status().applications) == before


def _sb3_env(address=None):
    from poser_agents.wrappers import EncodeObservation

    pool = {"pool": "ray", "pool_kwargs": {"address": address, "timeout_s": 60}} if address else {}
    return EncodeObservation(gym.make("ImagePoser-v0", experts=EXPERTS, **pool), encoder="hashed")


def test_sb3_subproc_workers_share_one_pool(ray_address):
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    pytest.importorskip("poser_agents")
    from functools import partial

    results = []
    for venv in (
        vec_env.DummyVecEnv([_sb3_env] * 2),
        vec_env.SubprocVecEnv([partial(_sb3_env, ray_address)] * 2, start_method="spawn"),
    ):
        venv.seed(5)
        obs = venv.reset()
        rows = []
        for t in range(10):
            actions = np.array(
                [
                    int(
                        np.flatnonzero(obs["action_mask"][i] > 0.5)[
                            t % int((obs["action_mask"][i] > 0.5).sum())
                        ]
                    )
                    for i in range(2)
                ]
            )
            obs, rewards, dones, infos = venv.step(actions)
            rows.append(
                (
                    obs["progress"].copy(),
                    rewards.astype(np.float32),
                    dones.copy(),
                    [info["error"] for info in infos],
                )
            )
        venv.close()
        results.append(rows)
    for (p1, r1, d1, e1), (p2, r2, d2, e2) in zip(*results, strict=True):
        assert (
            np.array_equal(p1, p2)
            and np.array_equal(r1, r2)
            and np.array_equal(d1, d2)
            and e1 == e2
            and not any(e1)  # no error ("" since the env's info schema is fixed)
        )


class BatchReporter(Expert):
    """Reports, in its result, how many requests its batch held."""

    name, kind, cost = "batch-reporter", "t2i", 1.0

    def __call__(self, command, image, seed):
        return self.call_batch([(command, image, seed)])[0]

    def call_batch(self, calls):
        return [
            ExpertResult(np.full((64, 64, 3), seed % 256, np.uint8), 1.0, {"batch": len(calls)})
            for _, _, seed in calls
        ]


class Picky(Expert):
    """Fails on one seed in five: the other requests of its batch must still succeed."""

    name, kind, cost = "picky", "t2i", 1.0

    def __call__(self, command, image, seed):
        if seed % 5 == 3:
            raise ValueError(f"unlucky seed {seed}")
        return ExpertResult(np.zeros((64, 64, 3), np.uint8), 1.0)


def test_requests_from_many_callers_are_batched_per_expert(ray_address):
    suite = make_suite("shapes")
    suite = replace(suite, experts=(BatchReporter(), Picky()))
    pool = RayPool(address=ray_address, max_batch_size=4, batch_wait_timeout_s=5.0, timeout_s=60)
    remote = pool.connect(suite)
    command = suite.extractor.extract("draw a red circle").commands[0]
    results: dict[int, object] = {}

    def call(expert, seed):
        try:
            results[(expert.name, seed)] = expert(command, None, seed)
        except Exception as e:
            results[(expert.name, seed)] = e

    threads = [
        threading.Thread(target=call, args=(e, s)) for e in remote.experts for s in range(10, 18)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sizes = [results[("batch-reporter", s)].meta["batch"] for s in range(10, 18)]
    assert max(sizes) > 1 and max(sizes) <= 4  # batched, never past max_batch_size
    assert [int(results[("batch-reporter", s)].image[0, 0, 0]) for s in range(10, 18)] == list(
        range(10, 18)
    )
    failed = {s for s in range(10, 18) if isinstance(results[("picky", s)], Exception)}
    assert failed == {13}
    assert str(results[("picky", 13)]) == "unlucky seed 13" and isinstance(
        results[("picky", 13)], ValueError
    )
    pool.shutdown()


def test_run_batch_isolates_the_failing_request():
    out = run_batch(Picky(), "call_batch", [(None, None, 12), (None, None, 13), (None, None, 14)])
    assert isinstance(out[1], ValueError) and all(
        isinstance(o, ExpertResult) for o in (out[0], out[2])
    )


class Sleeper(Expert):
    """Answers far too slowly."""

    name, kind, cost = "sleeper", "t2i", 1.0

    def __call__(self, command, image, seed):
        threading.Event().wait(30)
        return ExpertResult(np.zeros((64, 64, 3), np.uint8), 1.0)


def test_an_unanswering_pool_truncates_the_step(ray_address):
    suite = make_suite("shapes")
    suite = replace(suite, experts=(Sleeper(), *suite.experts[1:3]))
    fast = {"timeout_s": 0.5, "max_retries": 1, "retry_backoff_s": 0.1}
    env = ray_env(ray_address, suite=suite, pool_kwargs=fast)
    env.reset(seed=0)
    _, _, term, trunc, info = env.step(0)
    assert trunc and not term and info["error_component"] == "pool"
    assert "after 2 attempt(s) of up to 0.5 s" in info["error"]
    assert "no answer yet, kept waiting on the same request" in info["error"]
    env.unwrapped.pool.shutdown()


class Counted(Expert):
    """Takes about 2 s and writes one line per call to a file, so duplicate work shows."""

    kind, cost = "t2i", 1.0

    def __init__(self, path):
        self.name, self.path = "counted", str(path)

    def __call__(self, command, image, seed):
        with open(self.path, "a") as f:
            f.write(f"{seed}\n")
        threading.Event().wait(2.0)
        return ExpertResult(np.full((64, 64, 3), seed % 256, np.uint8), 1.0)


def test_a_slow_call_is_waited_for_not_sent_again(ray_address, tmp_path):
    suite = replace(make_suite("shapes"), experts=(Counted(tmp_path / "calls.txt"),))
    pool = RayPool(address=ray_address, timeout_s=0.5, max_retries=12, retry_backoff_s=0.0)
    remote = pool.connect(suite)
    command = suite.extractor.extract("draw a red circle").commands[0]
    result = remote.experts[0](command, None, 7)
    assert int(result.image[0, 0, 0]) == 7
    # Several 0.5 s timeouts passed, but the running call was neither cancelled nor resent:
    # the GPU did the work once.
    assert (tmp_path / "calls.txt").read_text().split() == ["7"]
    pool.shutdown()


class Placed(Expert):
    """Reports where its replica placed it (the optional place(device, gpu_share) hook)."""

    kind, cost = "t2i", 1.0

    def __init__(self, name):
        self.name, self.placed = name, None

    def place(self, device, gpu_share):
        import os

        self.placed = (device, gpu_share, os.environ.get("CUDA_VISIBLE_DEVICES"))

    def __call__(self, command, image, seed):
        return ExpertResult(np.zeros((64, 64, 3), np.uint8), 1.0, meta={"placed": self.placed})


def test_replicas_are_placed_by_their_gpu_share(ray_address):
    suite = replace(make_suite("shapes"), experts=(Placed("on-gpu"), Placed("on-cpu")))
    pool = RayPool(address=ray_address, timeout_s=60, expert_options={"on-gpu": {"num_gpus": 0.5}})
    remote = pool.connect(suite)
    command = suite.extractor.extract("draw a red circle").commands[0]
    on_gpu, on_cpu = (e(command, None, 0).meta["placed"] for e in remote.experts)
    assert on_gpu == ("cuda", 0.5, "0")  # the GPU Ray assigned, half of it
    assert on_cpu == ("cpu", 1.0, "")  # no share: GPUs hidden, models on the CPU
    pool.shutdown()


def test_diffusers_components_follow_their_replica(tiny_specs, tiny_vlm):
    pytest.importorskip("diffusers")
    from poser_env.pools.ray_pool import place_component
    from poser_env.suites.diffusers import make_diffusers_suite

    suite = make_diffusers_suite(
        catalog=[s.to_dict() for s in tiny_specs],
        critic="vlm",
        critic_kwargs={"model": tiny_vlm},
        extractor="rules",
        device="auto",
        memory_budget_gb=8.0,
        image_size=(32, 32),
    )
    copy = cloudpickle.loads(cloudpickle.dumps(suite.experts[0]))
    assert place_component(copy, 0.0, []) == "cpu" and copy.loader.device == "cpu"
    critic = cloudpickle.loads(cloudpickle.dumps(suite.critic))
    place_component(critic, 0.0, [])
    assert critic.vqa.device == "cpu"
    # A replica with a share of a (logical) 24 GB GPU: at most a quarter of it for weights.
    from poser_env.suites.diffusers import loader as loader_mod

    gpu = cloudpickle.loads(cloudpickle.dumps(suite.experts[0]))
    real = loader_mod.resolve_device, loader_mod.card_gb
    loader_mod.resolve_device = lambda device: device  # there is no CUDA here to check against
    loader_mod.card_gb = lambda device: 24.0
    try:
        assert place_component(gpu, 0.25, ["0"]) == "cuda"
    finally:
        loader_mod.resolve_device, loader_mod.card_gb = real
    assert gpu.loader.device == "cuda" and gpu.loader.memory_budget_gb == 6.0
    # Built for an explicit GPU, but the replica has none: refused with the fix.
    explicit = cloudpickle.loads(cloudpickle.dumps(suite.critic))
    explicit.vqa.device = "cuda:1"
    with pytest.raises(
        ConfigError, match=r"device='cuda:1' but their Ray replica has no GPU share.*num_gpus"
    ):
        place_component(explicit, 0.0, [])


def test_an_experts_own_error_reads_as_in_process(ray_address):
    suite = make_suite("shapes")
    suite = replace(suite, experts=(Picky(), *suite.experts[1:3]))
    pooled = ray_env(ray_address, suite=suite)
    local = gym.make("ImagePoser-v0", suite=suite)
    infos = []
    for env in (pooled, local):
        for seed in range(40):  # the first episode whose first call fails
            env.reset(seed=seed)
            _, _, _, trunc, info = env.step(0)
            if info["error"]:
                break
        infos.append((seed, info["error"], info["error_component"]))
    pooled.unwrapped.pool.shutdown()
    assert infos[0] == infos[1]


def test_deploy_false_and_bad_options(ray_address):
    with pytest.raises(PoolError, match="No Serve application 'nope' runs .* and deploy=False"):
        ray_env(ray_address, experts=EXPERTS, pool_kwargs={"app_name": "nope", "deploy": False})
    with pytest.raises(
        ConfigError, match=r"expert_options names \['sdxl'\], which are not in suite 'shapes'"
    ):
        ray_env(
            ray_address, experts=EXPERTS, pool_kwargs={"expert_options": {"sdxl": {"num_gpus": 1}}}
        )
    with pytest.raises(ConfigError, match="RayPool timeout_s must be a number >= 0.001, got 0"):
        RayPool(timeout_s=0)


class Unbuildable(Expert):
    """Cannot be rebuilt in a replica (its weights "are missing" there)."""

    name, kind, cost = "unbuildable", "t2i", 1.0

    def __init__(self):
        self.weights = "here, not there"

    def __call__(self, command, image, seed):
        return ExpertResult(np.zeros((64, 64, 3), np.uint8), 1.0)

    def __setstate__(self, state):
        raise OSError("weights not found on this node")


def test_a_failed_deployment_is_a_pool_error(ray_address):
    suite = make_suite("shapes")
    suite = replace(suite, experts=(Unbuildable(), *suite.experts[1:2]))
    with pytest.raises(
        PoolError, match="Deploying the pool application 'image-poser-shapes-.*' .* failed"
    ) as e:
        ray_env(ray_address, suite=suite)
    assert "expert-unbuildable" in str(e.value) and "weights not found on this node" in str(e.value)


def test_pool_command_lists_and_shuts_down(ray_address, capsys):
    from poser_env.__main__ import main

    ray_env(ray_address, experts=EXPERTS[:2])
    assert main(["pool", "list", "--address", ray_address]) == 0
    listing = capsys.readouterr().out
    app = next(
        line.split()[0] for line in listing.splitlines() if "sketch-turbo, count-master" in line
    )
    assert f"{app}  RUNNING  suite 'shapes'" in listing
    assert main(["pool", "shutdown", "--address", ray_address, "--app", "image-poser-nope"]) == 1
    assert "no pool application 'image-poser-nope'" in capsys.readouterr().err
    assert main(["pool", "shutdown", "--address", ray_address, "--app", app]) == 0
    assert capsys.readouterr().out == f"deleted {app}\n"
    assert app not in serve.status().applications
    assert main(["pool", "list"]) == 2
    assert "pool needs --address" in capsys.readouterr().err


def test_an_unreachable_cluster_fails_fast():
    from poser_env.pools.ray_pool import probe

    with socket.socket() as s:  # a port nothing listens on: bind it, never listen
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(
            PoolError,
            match=f"Could not reach the Ray cluster at '127.0.0.1:{port}'.*ray start --head",
        ):
            probe(f"127.0.0.1:{port}", timeout_s=2)
        with pytest.raises(PoolError, match="Could not reach the Ray cluster at 'ray://127.0.0.1"):
            probe(f"ray://127.0.0.1:{port}", timeout_s=2)
    probe("auto")  # resolved by Ray, not probed


def test_tiny_diffusers_experts_as_deployments(ray_address, tiny_suite_kwargs):
    pytest.importorskip("diffusers")
    kwargs = {**tiny_suite_kwargs, "experts": ["tiny-t2i", "tiny-img2img"]}
    replicas = {"num_cpus": 0, "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1"}}}
    pooled = ray_env(
        ray_address,
        suite="diffusers",
        suite_kwargs=kwargs,
        image_size=(32, 32),
        pool_kwargs={"timeout_s": 120, "actor_options": replicas},
    )
    local = gym.make("ImagePoser-v0", suite="diffusers", suite_kwargs=kwargs, image_size=(32, 32))
    # Ray gives a replica without CPUs one torch thread; float sums in another thread count
    # round differently, so run the local models with one thread too.
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        expected = rollout(local, 0, steps=3)
    finally:
        torch.set_num_threads(threads)
    assert rollout(pooled, 0, steps=3) == expected
    # The models were loaded in the replicas, never in this process.
    assert pooled.unwrapped.suite.experts[0].loader.resident() == []
    pooled.unwrapped.pool.shutdown()
