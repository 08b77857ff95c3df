"""Benchmark the coordinate-descent solver: against Rackovic et al.'s solver, then at ICT-rig scale.

Usage:  RACKOVIC_REPO=path/to/Siggraph-Paper-Code python tools/bench_cd.py [--part rackovic|scale|threads|all]
                                                                         [--repeats 5] [--their-threads 1]

Every time is the median of --repeats runs (their spread printed beside it), and the runs of the solvers compared
are interleaved, so that a machine whose speed drifts slows them alike.

Part "rackovic" (../shared/bench/rackovic): J and the metrics of the authors' recorded predictions; facecap's solver
on the same data, jointly and in their 10-frame causal intervals; the ratios (J, mesh errors, roughness, time).
With RACKOVIC_REPO set to a checkout of github.com/stevorackovic/Siggraph-Paper-Code, the authors' solver
(Scripts/TACFunctions.solver_holistic with the recorded parameters) runs in this process on the same data and the
speed-up is the ratio of the two medians; its predictions are compared with the recorded ones. Without it, their
time is the one recorded in baseline_results.json, and the speed-up is labelled as against that record.
Part "scale": the ICT face rig (53 shapes, 9409 vertices), a seeded smooth sparse 300-frame weight sequence, noisy
targets; frames/s and weight errors.
Part "threads": facecap's solver with its BLAS on one thread (its setting, facecap.solve.cd.SOLVER_BLAS_THREADS)
and on two, on the cases above.

BLAS threads are set with threadpoolctl: facecap's solver sets its own; the authors' runs under --their-threads
(default 1, as their recorded figures were measured).
"""

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from shared_data import ICT_FACE, SHARED
from threadpoolctl import threadpool_info, threadpool_limits

import facecap.solve.cd as cd_module
from facecap.rig import load_rig
from facecap.solve import CDConfig, CDResult, DeltaBasis, cd_objective, solve_cd
from facecap.testing.cd_metrics import load_rackovic_problem, solve_metrics

RACKOVIC = SHARED / "bench" / "rackovic"
JOINT_GAP = 1e-3  # J must come within 0.1% of the best joint optimum recorded in baseline_results.json
SPEEDUP_TARGET = 50.0
FPS_TARGET = 200.0
SCALE_FRAMES, SCALE_SEED = 300, 0
SCALE_NOISE = 0.01  # target noise std per coordinate, rig units (cm for ICT: 0.1 mm)
SCALE_CONFIG = CDConfig(lambda_l1=1e-4, lambda_smooth=1e-3, tol=1e-6)  # cm^2 scale: noise variance is 1e-4
PAPER = CDConfig(lambda_l1=1.0, lambda_smooth=1.0)
PAPER_INTERVALS = CDConfig(lambda_l1=1.0, lambda_smooth=1.0, interval=10)


@dataclass
class Timing:
    """Wall seconds of repeated runs."""

    runs: list[float]

    @property
    def median(self) -> float:
        return float(np.median(self.runs))

    def __str__(self) -> str:
        return f"{self.median:.3f} s [{min(self.runs):.3f}-{max(self.runs):.3f}]"


def interleaved(solvers: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, Timing], dict]:
    """Run each solver ``repeats`` times, round-robin; their wall times and last results."""
    times: dict[str, list[float]] = {name: [] for name in solvers}
    results = {}
    for _ in range(repeats):
        for name, solve in solvers.items():
            t0 = time.perf_counter()
            results[name] = solve()
            times[name].append(time.perf_counter() - t0)
    return {name: Timing(t) for name, t in times.items()}, results


def ours(basis: DeltaBasis, targets: np.ndarray, config: CDConfig) -> Callable[[], CDResult]:
    """facecap's solve on a fresh basis (the Gram matrices are formed inside the timing)."""
    def solve() -> CDResult:
        fresh = DeltaBasis(basis.deltas, basis.corrective_deltas, basis.corrective_keys)
        return solve_cd(fresh, targets, config)
    return solve


def theirs(repo: Path, frames: int, params: dict, threads: int) -> tuple[Callable[[], np.ndarray], np.ndarray]:
    """The authors' solver on the benchmark's first ``frames`` frames, and their targets [frames, n]."""
    scripts = repo / "Scripts"
    if not (scripts / "TACFunctions.py").is_file():
        raise SystemExit(f"RACKOVIC_REPO={repo}: no Scripts/TACFunctions.py (a checkout of "
                         "github.com/stevorackovic/Siggraph-Paper-Code is expected)")
    if str(scripts) not in sys.path:
        sys.path.insert(0, str(scripts))
    from HelperFunctions import ctr_order, quartic_rig
    from Holistic_CD_Interval import banded_matrix, banded_matrix_add
    from TACFunctions import solver_holistic

    data = dict(np.load(RACKOVIC / "rackovic_synthetic_seed0.npz"))
    rig = [data[k] for k in ("deltas", "bs1", "bs2", "bs3", "keys1", "keys2", "keys3")]
    targets = np.array([quartic_rig(w, *rig) for w in data["weights"][:frames]]).T   # [n, frames], their layout
    T = params["T"]
    F = banded_matrix(T)
    F_tilde, add_e, add_g = banded_matrix_add(F)
    order = ctr_order(data["deltas"])

    def solve() -> np.ndarray:
        with threadpool_limits(limits=threads, user_api="blas"):
            X = solver_holistic(frames, T, targets, data["deltas"].shape[1], *rig, order, F, F_tilde, add_e, add_g,
                                params["lmbd1"], params["lmbd2"], params["num_iter_max"], params["num_iter_min"])
        return np.asarray(X).T
    return solve, targets.T


def rackovic(repeats: int, their_threads: int) -> bool:
    baseline = json.loads((RACKOVIC / "baseline_results.json").read_text())
    repo = os.environ.get("RACKOVIC_REPO")
    ok = True
    for frames, pred_file, key in ((20, "pred_weights.npy", "train20"), (100, "pred_weights_train100.npy", "train100")):
        basis, W_true = load_rackovic_problem(RACKOVIC / "rackovic_synthetic_seed0.npz")
        W_true = W_true[:frames]
        Y = basis.evaluate(W_true)
        recorded = np.load(RACKOVIC / pred_file)
        best = baseline["diagnostics_optimality"][key]["J_joint_optimum_LBFGSB"]
        solvers = {"ours joint": ours(basis, Y, PAPER), "ours intervals T=10": ours(basis, Y, PAPER_INTERVALS)}
        if repo:
            their_solve, their_targets = theirs(Path(repo), frames, baseline["params"], their_threads)
            print(f"\n== Rackovic synthetic, {frames} frames: their solver run here ({their_threads} BLAS thread(s)), "
                  f"{repeats} runs each, interleaved; their targets equal ours to "
                  f"{np.abs(their_targets - Y).max():.1e}")
            solvers = {"theirs": their_solve, **solvers}
        else:
            print(f"\n== Rackovic synthetic, {frames} frames: their time as recorded in baseline_results.json "
                  "(set RACKOVIC_REPO to run their solver here)")
        times, results = interleaved(solvers, repeats)
        if repo:
            their_time, their_label = times["theirs"], "theirs (run here)"
            print(f"their predictions vs the recorded ones: max |dw| {np.abs(results['theirs'] - recorded).max():.1e}")
        else:
            runs = baseline["timing"][f"{key}_OPENBLAS_NUM_THREADS=1"]["solver_wall_s"]
            their_time, their_label = Timing(runs), "theirs (recorded)"
            results["theirs"] = recorded
        J_theirs = cd_objective(basis, results["theirs"], Y, PAPER)
        print(f"{'mode':<22}{'time (median [min-max])':>26}{'speed-up':>10}{'J':>12}{'J/theirs':>10}{'J/best':>10}"
              f"{'mesh mean':>11}{'mesh max':>10}{'rough/ctrl':>11}{'w RMSE':>9}{'sweeps':>8}")
        for mode in ["theirs", *(m for m in solvers if m != "theirs")]:
            timing = their_time if mode == "theirs" else times[mode]
            W, sweeps = (results[mode].weights, f"{results[mode].sweeps:>8d}") if mode != "theirs" \
                else (results[mode], "")
            m = solve_metrics(basis, W, Y, W_true)
            J = cd_objective(basis, W, Y, PAPER)
            print(f"{their_label if mode == 'theirs' else mode:<22}{str(timing):>26}"
                  f"{their_time.median / timing.median:>10.1f}{J:>12.6f}{J / J_theirs:>10.4f}{J / best:>10.4f}"
                  f"{m.mesh_error_mean:>11.4f}{m.mesh_error_max:>10.4f}{m.roughness_per_controller:>11.5f}"
                  f"{m.weight_rmse:>9.4f}{sweeps}")
            if mode == "ours joint":
                m_theirs = solve_metrics(basis, results["theirs"], Y, W_true)
                checks = {"J <= theirs": J <= J_theirs,
                          f"J within {JOINT_GAP:.1%} of best": J <= best * (1 + JOINT_GAP),
                          f">= {SPEEDUP_TARGET:.0f}x faster": their_time.median / timing.median >= SPEEDUP_TARGET,
                          "roughness <= theirs": m.roughness_per_controller <= m_theirs.roughness_per_controller}
                joint_checks = ", ".join(f"{k}: {'PASS' if v else 'FAIL'}" for k, v in checks.items())
                ok &= all(checks.values())
        print(f"   joint checks: {joint_checks}")
    print("   (the joint optimum of J trades a little mesh fit for smoothness: compare J first)")
    return ok


def synthetic_weights(T: int, K: int, rng: np.random.Generator) -> np.ndarray:
    """[T, K] smooth sparse weights: 1 to 3 Gaussian bumps per shape, shifted down and clipped to [0, 1]."""
    t = np.arange(T)[:, None]
    W = np.zeros((T, K))
    for _ in range(3):
        use = rng.uniform(size=K) < 0.7
        centre, width, height = rng.uniform(0, T, K), rng.uniform(8, 30, K), rng.uniform(0.3, 1.0, K)
        W += use * height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return np.clip(W - 0.1, 0.0, 1.0)


def scale_problem() -> tuple[DeltaBasis, np.ndarray, np.ndarray, str]:
    """The ICT face rig's basis, its noisy targets [T, n], the true weights [T, K] and the rig's units."""
    rig = load_rig(ICT_FACE)
    rng = np.random.default_rng(SCALE_SEED)
    W_true = synthetic_weights(SCALE_FRAMES, rig.num_shapes, rng)
    basis = DeltaBasis.from_rig(rig)
    Y = basis.evaluate(W_true) + rng.normal(0.0, SCALE_NOISE, (SCALE_FRAMES, basis.num_coords))
    return basis, Y, W_true, rig.units


def scale(repeats: int) -> bool:
    basis, Y, W_true, units = scale_problem()
    times, results = interleaved({"ours": ours(basis, Y, SCALE_CONFIG)}, repeats)
    W = results["ours"].weights
    m = solve_metrics(basis, W, Y, W_true)
    fps = SCALE_FRAMES / times["ours"].median
    print(f"\n== ICT rig scale: {SCALE_FRAMES} frames, {basis.num_shapes} shapes, {basis.num_coords // 3} vertices, "
          f"noise {SCALE_NOISE} {units}, {(W_true > 0).mean():.0%} of weights > 0")
    print(f"time {times['ours']}, {fps:.0f} frames/s ({fps / FPS_TARGET:.2f}x the {FPS_TARGET:.0f} frames/s target), "
          f"{results['ours'].sweeps} sweeps, weight RMSE {m.weight_rmse:.5f}, max |dw| {np.abs(W - W_true).max():.4f}, "
          f"mesh error mean {m.mesh_error_mean:.5f} {units}")
    return fps >= FPS_TARGET


@contextmanager
def solver_blas_threads(threads: int) -> Iterator[None]:
    """facecap's solver with its BLAS on ``threads`` threads instead of its own setting."""
    own = cd_module.SOLVER_BLAS_THREADS
    cd_module.SOLVER_BLAS_THREADS = threads
    try:
        yield
    finally:
        cd_module.SOLVER_BLAS_THREADS = own


def threads(repeats: int) -> bool:
    rack, W_rack = load_rackovic_problem(RACKOVIC / "rackovic_synthetic_seed0.npz")
    Y_rack = rack.evaluate(W_rack)
    ict, Y_ict, _, _ = scale_problem()
    cases = {"Rackovic 20 frames, joint": ours(rack, Y_rack[:20], PAPER),
             "Rackovic 100 frames, joint": ours(rack, Y_rack, PAPER),
             f"ICT {SCALE_FRAMES} frames": ours(ict, Y_ict, SCALE_CONFIG)}
    print(f"\n== facecap's solver with its BLAS on 1 and 2 threads ({os.cpu_count()} CPUs), {repeats} runs each, "
          "interleaved")
    for name, solve in cases.items():
        def on(n: int, solve=solve) -> Callable[[], CDResult]:
            def run() -> CDResult:
                with solver_blas_threads(n):
                    return solve()
            return run
        times, _ = interleaved({"1 thread": on(1), "2 threads": on(2)}, repeats)
        print(f"{name:<28} 1 thread {times['1 thread']}, 2 threads {times['2 threads']}: "
              f"2 threads take {times['2 threads'].median / times['1 thread'].median:.2f}x as long")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["rackovic", "scale", "threads", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per solver and case (medians reported)")
    parser.add_argument("--their-threads", type=int, default=1, help="BLAS threads of the authors' solver")
    args = parser.parse_args()
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']} threads" for p in threadpool_info())
    print(f"facecap's solver: {cd_module.SOLVER_BLAS_THREADS} BLAS thread(s); the process's pools: {pools}")
    ok = True
    if args.part in ("rackovic", "all"):
        ok &= rackovic(args.repeats, args.their_threads)
    if args.part in ("scale", "all"):
        ok &= scale(args.repeats)
    if args.part in ("threads", "all"):
        ok &= threads(args.repeats)
    print("\nall targets met" if ok else "\nsome targets missed (timings on a shared machine are contended)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
