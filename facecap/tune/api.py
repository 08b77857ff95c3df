"""``tune_rig``: a tracking rig θ_T whose tracker outputs the intended controls (Omens et al. 2025).

Stages follow section 11 (each a run of :func:`facecap.tune.optimize.optimise` on eq. 55):

- ``reduced``: the reduced tracker T_D (only each expression's own controls), γ1^D and γ2^D, on the
  columns of the expression's controls (section 11 stage 1; skipped for a black box in the paper).
- ``primary``: the full tracker with Heaviside-filtered terms γ1^H, γ2^H, same columns (stage 2).
- ``spurious``: stage 2 plus a γ1^H term driving the controls that are zero in c_k to zero (stage 3).
- ``auxiliary``: the columns of those spurious controls, over every expression, the primary
  columns frozen (stage 4).

How ``facecap fit`` uses the result: track with ``TuneResult.tracking_rig`` (its deltas are θ_T)
and export the weights against the animation rig, whose ``shape_names`` are the same; the
animation rig itself is never changed.
"""

import logging
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from facecap.config import field
from facecap.errors import ConfigError, FormatError
from facecap.rig.model import Rig
from facecap.solve.cd import CDConfig
from facecap.tune.linear_rig import LinearRig
from facecap.tune.objective import Objective, ObjectiveWeights
from facecap.tune.optimize import SolverConfig, TuneProblem, optimise
from facecap.tune.simon_says import ExpressionSet
from facecap.tune.sparsity import ThetaLayout, active_controls
from facecap.tune.trackers import CDTracker, LeastSquaresTracker, LSTrackerConfig, Tracker

__all__ = ["TuneConfig", "TuneResult", "tune_rig", "evaluate_tracking", "make_tracker"]

log = logging.getLogger(__name__)

Stage = Literal["reduced", "primary", "spurious", "auxiliary"]


def _default_cd() -> CDConfig:
    return CDConfig(lambda_l1=1e-4, lambda_smooth=0.0, tol=1e-8)


@dataclass
class TuneConfig:
    """Settings of ``facecap tune-rig``."""

    tracker: Literal["cd", "ls"] = field("cd", "the tracker whose rig is tuned: facecap's CD solver (black box) "
                                               "or the differentiable least-squares tracker")
    cd: CDConfig = field(_default_cd(), "CD tracker settings (expressions are independent: no smoothing)")
    ls: LSTrackerConfig = field(LSTrackerConfig(box=True), "least-squares tracker settings")
    objective: ObjectiveWeights = field(ObjectiveWeights(gamma1=1.0, gamma3=10.0, gamma_eps=1e-3),
                                        "the gammas of eqs. 16/17/55")
    solver: SolverConfig = field(SolverConfig(max_iters=15), "optimiser and implicit-derivative settings")
    stages: list[str] = field(["primary", "spurious", "auxiliary"], "section 11 stages, in order: reduced, "
                                                                    "primary, spurious, auxiliary")
    spurious_weight: float = field(1.0, "gamma1 of the spurious-control term in stages spurious/auxiliary")
    spurious_threshold: float = field(0.02, "a control zero in c_k but above this in the tracker counts as "
                                            "spurious (its column joins stage auxiliary)")
    nonzero_tolerance: float = field(1e-3, "rig entries below this fraction of the shape's largest offset "
                                           "are zero and stay fixed (section 10)")

    def __post_init__(self) -> None:
        bad = [s for s in self.stages if s not in ("reduced", "primary", "spurious", "auxiliary")]
        if bad:
            raise ConfigError(f"unknown stage {bad[0]!r}; stages: reduced, primary, spurious, auxiliary")


@dataclass(frozen=True)
class TuneResult:
    """The tracking rig (θ_T in its shape deltas) and a JSON-ready report of errors before/after."""

    tracking_rig: Rig
    report: dict


def make_tracker(config: TuneConfig) -> Tracker:
    return CDTracker(config.cd) if config.tracker == "cd" else LeastSquaresTracker(config.ls)


def evaluate_tracking(tracker: Tracker, animation: LinearRig, tracking: LinearRig, controls: np.ndarray,
                      targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per-expression errors of the tracker with the tracking rig.

    Returns [N] arrays: ``control_rmse`` (RMS over all K controls of T(v_k) - c_k), ``tracking_mesh_rms``
    (RMS vertex distance |R(T(v_k); θ_T) - v_k|, rig units: how well the tracker still fits the
    geometry) and ``animation_mesh_rms`` (|R(T(v_k); θ_R) - v_k|: the animation rig replaying them).
    """
    tracked = tracker.track(tracking, targets)

    def rms(offsets: np.ndarray) -> np.ndarray:
        return np.sqrt((offsets.reshape(len(offsets), -1, 3) ** 2).sum(-1).mean(-1))

    return {"control_rmse": np.sqrt(((tracked - controls) ** 2).mean(axis=1)),
            "tracking_mesh_rms": rms(tracking.evaluate(tracked) - targets),
            "animation_mesh_rms": rms(animation.evaluate(tracked) - targets),
            "controls": tracked}


def _stage_setup(stage: str, config: TuneConfig, controls: np.ndarray, tracked: np.ndarray,
                 deltas: np.ndarray) -> tuple[ObjectiveWeights, ThetaLayout, np.ndarray | None]:
    active = active_controls(controls)
    weights = replace(config.objective, filter="active")
    if stage == "reduced":
        return weights, ThetaLayout.from_columns(deltas, active, config.nonzero_tolerance), active
    if stage == "primary":
        return weights, ThetaLayout.from_columns(deltas, active, config.nonzero_tolerance), None
    weights = replace(weights, gamma1_spurious=config.spurious_weight)
    if stage == "spurious":
        return weights, ThetaLayout.from_columns(deltas, active, config.nonzero_tolerance), None
    spurious_cols = ((tracked > config.spurious_threshold) & ~active).any(axis=0) & ~active.any(axis=0)
    per_expr = np.broadcast_to(spurious_cols, controls.shape)
    return weights, ThetaLayout.from_columns(deltas, per_expr, config.nonzero_tolerance), None


def tune_rig(rig: Rig, expressions: ExpressionSet, config: TuneConfig | None = None) -> TuneResult:
    """Tune the tracking rig on the expressions not held out; report errors on all of them.

    Args:
        rig: the animation rig θ_R (unchanged; its deltas start θ_T).
        expressions: intended controls and performer meshes (any column order; matched by name).
        config: stages, objective, tracker and solver settings.
    Returns:
        :class:`TuneResult` with the tracking rig (same names, neutral, correctives) and the report.
    """
    config = config or TuneConfig()
    expressions = expressions.for_rig(rig)
    train = ~expressions.holdout
    if not train.any():
        raise FormatError("every expression is held out; nothing to tune on")
    animation = LinearRig.from_rig(rig)
    targets = (expressions.meshes - rig.neutral[None]).reshape(len(expressions.names), -1)
    tracker = make_tracker(config)
    before = evaluate_tracking(tracker, animation, animation, expressions.controls, targets)
    deltas = animation.deltas.copy()
    stages = []
    for stage in config.stages:
        tracked = tracker.track(animation.with_deltas(deltas), targets[train])
        weights, layout, allowed = _stage_setup(stage, config, expressions.controls[train], tracked, animation.deltas)
        if layout.size == 0:
            log.info("stage %s: no free rig entries; skipped", stage)
            continue
        objective = Objective(weights, animation, expressions.controls[train], targets[train],
                              layout.pack(animation.deltas))
        problem = TuneProblem(tracker, animation, deltas, layout, objective, targets[train], config.solver, allowed)
        result = optimise(problem, layout.pack(deltas))
        deltas = layout.unpack(result.theta, deltas)
        log.info("stage %s: %d parameters, loss %.4g -> %.4g in %d iterations", stage, layout.size,
                 result.history[0], result.loss, result.iterations)
        stages.append({"stage": stage, "parameters": layout.size, "loss_before": result.history[0],
                       "loss_after": result.loss, "iterations": result.iterations,
                       "tracker_runs": result.evaluations})
    tuned = animation.with_deltas(deltas)
    after = evaluate_tracking(tracker, animation, tuned, expressions.controls, targets)
    tracking_rig = rig.replace(shape_deltas=np.ascontiguousarray(deltas.T).reshape(rig.shape_deltas.shape))
    return TuneResult(tracking_rig=tracking_rig, report=_report(expressions, before, after, stages, rig.units))


def _report(expressions: ExpressionSet, before: dict, after: dict, stages: list[dict], units: str) -> dict:
    rows = []
    for k, name in enumerate(expressions.names):
        rows.append({"expression": name, "split": "holdout" if expressions.holdout[k] else "train",
                     **{f"{key}_{when}": float(d[key][k]) for when, d in (("before", before), ("after", after))
                        for key in ("control_rmse", "tracking_mesh_rms", "animation_mesh_rms")}})
    summary = {}
    for split, sel in (("train", ~expressions.holdout), ("holdout", expressions.holdout)):
        if sel.any():
            summary[split] = {f"{key}_{when}": float(d[key][sel].mean()) for when, d in
                              (("before", before), ("after", after))
                              for key in ("control_rmse", "tracking_mesh_rms", "animation_mesh_rms")}
    return {"units": units, "stages": stages, "summary": summary, "expressions": rows,
            "usage": "track with the tracking rig (tuned shape deltas); export weights against the animation "
                     "rig: same shape_names, the animation rig is unchanged"}
