"""A search across a two-node Ray cluster started on this machine (``ray start --head`` and a second
``ray start --address``, one CPU each): candidates run on both nodes, each evaluation records its node, and
the result is the local executor's with the same seed.

The cluster's processes run in a session of their own (``ray start --block``); teardown ends that session's
processes, so the test never stops a Ray that someone else started on the machine."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import GLUE, ROOT, search_args

pytestmark = [pytest.mark.skipif(not (GLUE / "SST-2" / "dev.tsv").is_file(), reason="../shared/data/glue not present"),
              pytest.mark.skipif(shutil.which("ray") is None, reason="Ray is not installed (pip install 'kdnas-bench[ray]')")]
SMALL = ["--episodes", "2", "--candidates", "2", "--proxy-examples", "64"]
STORE = str(200 * 1024 * 1024)  # a small object store: the machine is shared


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ports() -> list[str]:
    """Each node's own free ports for what Ray would otherwise put on fixed ones (shared with other clusters)."""
    return ["--node-manager-port", str(_free_port()), "--object-manager-port", str(_free_port()),
            "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
            "--runtime-env-agent-port", str(_free_port()), "--metrics-export-port", str(_free_port())]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(["ray", "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                                 "--num-gpus", "0",
                                 "--object-store-memory", STORE, "--disable-usage-stats", *_ports(), *args],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _nodes(address: str, env: dict[str, str]) -> list[dict[str, object]]:
    code = ("import json, ray; ray.init(address=%r, log_to_driver=False); "
            "print(json.dumps([{'id': n['NodeID'], 'resources': n['Resources']} for n in ray.nodes() if n['Alive']]))")
    try:
        out = subprocess.run([sys.executable, "-c", code % address], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    except subprocess.TimeoutExpired:
        return []
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else []


def _wait_for(count: int, address: str, env: dict[str, str], procs: list[subprocess.Popen[bytes]],
              logs: list[Path]) -> list[dict[str, object]]:
    """The cluster's live nodes once there are ``count``; the test fails with a node's log when one exits."""
    nodes: list[dict[str, object]] = []
    deadline = time.monotonic() + 240  # a loaded 2-core machine starts Ray slowly
    while time.monotonic() < deadline:
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                pytest.fail(f"ray start exited ({p.returncode}): {log.read_text(errors='replace')[-2000:]}")
        nodes = _nodes(address, env)
        if len(nodes) == count:
            return nodes
        time.sleep(1)
    pytest.fail(f"the Ray cluster did not reach {count} node(s): {nodes}")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """End every process of the cluster's sessions (ray start's own, GCS, raylets, workers), by id."""
    sessions = {p.pid for p in procs}
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.5)
    for pid in _session_pids(sessions):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        p.wait(timeout=30)


def _session_pids(sessions: set[int]) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True, check=False).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [int(pid) for pid, sid in rows if int(sid) in sessions and int(pid) != os.getpid()]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str], list[dict[str, object]]]]:
    """A head node and a second node (resource ``second``), one CPU each; (address, env, nodes)."""
    temp = Path(tempfile.mkdtemp(prefix="rd", dir="/tmp"))  # short: Ray's socket paths must fit
    # RAY_AUTH_MODE: newer Ray turns token authentication on when a token file exists (~/.ray/auth_token, written
    # by any earlier local ray.init), and a driver then fails to join with "InvalidAuthToken"; this private
    # cluster on the loopback runs without it, its nodes and its driver alike
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0",
           "TOKENIZERS_PARALLELISM": "false", "RAY_AUTH_MODE": "disabled"}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    logs = [temp.parent / f"{temp.name}-head.log", temp.parent / f"{temp.name}-second.log"]
    procs = [_start(["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp)], env, logs[0])]
    try:
        _wait_for(1, address, env, procs, logs[:1])
        procs.append(_start(["--address", address, "--resources", '{"second": 1}'], env, logs[1]))
        yield address, env, _wait_for(2, address, env, procs, logs)
    finally:
        for log in logs:
            log.unlink(missing_ok=True)
        _stop(procs)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_search_on_a_two_node_ray_cluster_runs_on_both_and_matches_local(
        cluster: tuple[str, dict[str, str], list[dict[str, object]]], preds: Path, tiny_teacher: Path,
        tiny_glue: Path, tmp_path: Path, run_cli) -> None:
    address, env, nodes = cluster
    second = next(n["id"] for n in nodes if "second" in n["resources"])  # type: ignore[operator]
    code, out, err = run_cli(*search_args(preds, tiny_teacher, tiny_glue, tmp_path / "local", *SMALL))
    assert code == 0, err
    local = json.loads(out)
    cmd = [sys.executable, "-m", "kdnas_bench", *search_args(preds, tiny_teacher, tiny_glue, tmp_path / "ray", *SMALL),
           "--executor", "ray", "--ray-address", address]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    remote = json.loads(proc.stdout)
    evals = [json.loads(x) for x in (tmp_path / "ray" / "evaluations.jsonl").read_text().splitlines()]
    ran_on = {e["node"] for e in evals}
    assert ran_on == {n["id"] for n in nodes} and second in ran_on  # candidates on both nodes
    local_evals = [json.loads(x) for x in (tmp_path / "local" / "evaluations.jsonl").read_text().splitlines()]
    assert not any("node" in e for e in local_evals)
    assert {json.dumps(e["arch"], sort_keys=True): e["metric"] for e in evals} == \
        {json.dumps(e["arch"], sort_keys=True): e["metric"] for e in local_evals}
    assert [(w["arch"], w["proxy_metric"], w["reward"]) for w in remote["winners"]] == \
        [(w["arch"], w["proxy_metric"], w["reward"]) for w in local["winners"]]
