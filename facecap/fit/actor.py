"""Actor profiles: what the fit learns of a performer, learnt once and reused for every take of theirs.

A profile holds what belongs to the person, not to a take:

- the identity: coefficients of the tracking rig's identity modes (or of its smooth neutral correction,
  :mod:`facecap.fit.neutral`), with the information [I, I] its fits gathered on them;
- the albedo of every tracking-rig vertex the fits sampled, with its evidence (the weight of the albedo's
  normal equations; 0 where no fit saw the vertex);
- the landmark detector's offsets from the rig's landmark vertices, per camera, in pixels.

It also keeps the lighting (SH) and the cameras' colour response of the last take it saw, as a starting
point only: the fit of a take solves its own.

:func:`build_actor_profile` fits the keyframes of one take after another, each take starting from what
the takes before it gave, so the evidence on the identity and the albedo adds up.
``fit_take(..., actor=profile)`` starts from a profile (:func:`performer_start`): the landmark
initialisation uses its identity, the state adopts its identity's information, appearance and albedo
evidence, and the plan has no keyframe stage (:func:`facecap.fit.stages.plan_stages`).

The detector's offsets are a bias of each view of the face: they transfer to a take whose cameras are
the profile's (same name and image size, focal lengths and principal point within
``CAMERA_INTRINSICS_TOLERANCE``, orientation within ``CAMERA_ANGLE_TOLERANCE_DEG``, centre within
``CAMERA_CENTRE_TOLERANCE_MM``). For a take with other cameras the fit measures them again with a short
keyframe stage (the finer keyframe scales) before the sweeps.

The file is an npz, ``facecap-actor`` version 1 (docs/formats.md).
"""

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facecap import __version__
from facecap.camera.model import Calibration, load_calibration
from facecap.errors import ConfigError, FacecapError, FormatError
from facecap.fit.appearance import Appearance, AppearanceStats
from facecap.fit.checkpoint import digest
from facecap.fit.config import FitConfig
from facecap.fit.pipeline import OpenedFit, opened_fit, resolve_device, run_stages
from facecap.fit.problem import SequenceState
from facecap.fit.stages import ProfileStart, plan_keyframes
from facecap.progress import track
from facecap.publish import publishing_files
from facecap.rig.model import Rig
from facecap.take.landmarks import Landmarks2D
from facecap.units import unit_scale

__all__ = ["ActorProfile", "ProfileTake", "PerformerStart", "build_actor_profile", "performer_start",
           "identity_basis", "save_actor", "load_actor", "ACTOR_FORMAT", "ACTOR_VERSION"]

log = logging.getLogger(__name__)

ACTOR_FORMAT = "facecap-actor"
ACTOR_VERSION = 1
ALBEDO_SPACE = "rig-vertices"          # the albedo is per vertex of the tracking rig
CAMERA_INTRINSICS_TOLERANCE = 0.01     # focal lengths relative; principal point relative to the image size
CAMERA_ANGLE_TOLERANCE_DEG = 1.0
CAMERA_CENTRE_TOLERANCE_MM = 10.0
_ARRAYS = ("identity", "identity_information", "albedo", "albedo_evidence", "sh", "gains", "bias", "image_size",
           "K", "R", "centre_mm", "offset_takes")


@dataclass(frozen=True)
class ActorProfile:
    """What the fit knows of a performer (see the module docstring). C: the cameras the profile has seen.

    Attributes:
        identity: [I] float64 identity coefficients; identity_information: [I, I] float64, the information
            (inverse covariance) its fits gathered on them.
        albedo: [V, 3] float32 linear albedo per tracking-rig vertex; albedo_evidence: [V, 3] float32 the
            weight of its normal equations (0: never seen).
        sh: [9, 3] float32 the last take's SH lighting; cameras: C names; gains, bias: [C, 3] float32 their
            colour response in the last take that had them.
        image_size: [C, 2] int (width, height); K: [C, 3, 3]; R: [C, 3, 3] world to camera; centre_mm: [C, 3]
            the camera centres in mm: what the detector offsets were measured with.
        detector_offsets: [C, L, 2] float32 pixels, each camera's median offset of every detected landmark
            from the rig's landmark vertex (None: built from landmarks files, which have none).
        offset_takes: [C] int how many takes each camera's offsets average.
        basis: what the identity and albedo refer to (:func:`identity_basis`).
        takes: one record a take it was built from (its folder, frames, keyframes).
    """

    identity: np.ndarray
    identity_information: np.ndarray
    albedo: np.ndarray
    albedo_evidence: np.ndarray
    sh: np.ndarray
    cameras: tuple[str, ...]
    gains: np.ndarray
    bias: np.ndarray
    image_size: np.ndarray
    K: np.ndarray
    R: np.ndarray
    centre_mm: np.ndarray
    detector_offsets: np.ndarray | None
    offset_takes: np.ndarray
    basis: dict[str, Any]
    takes: list[dict[str, Any]] = field(default_factory=list)

    def digest(self) -> str:
        """A digest of everything a fit takes from the profile."""
        offsets = [] if self.detector_offsets is None else [np.ascontiguousarray(self.detector_offsets)]
        return digest(self.basis, list(self.cameras), *(np.ascontiguousarray(getattr(self, k)) for k in _ARRAYS),
                      *offsets)

    def camera_matches(self, calibration: Calibration) -> list[bool]:
        """Per camera of ``calibration``: whether the profile has that camera, as calibrated then (see the
        module docstring for the tolerances)."""
        return [self._same_camera(calibration, name) for name in calibration.names]

    def _same_camera(self, calibration: Calibration, name: str) -> bool:
        if name not in self.cameras:
            return False
        i = self.cameras.index(name)
        cam = calibration[name]
        if tuple(self.image_size[i]) != tuple(cam.image_size):
            return False
        focal, centre = np.diagonal(cam.K)[:2], cam.K[:2, 2]
        size = np.asarray(cam.image_size, dtype=np.float64)
        if np.any(np.abs(focal / np.diagonal(self.K[i])[:2] - 1) > CAMERA_INTRINSICS_TOLERANCE) or \
                np.any(np.abs(centre - self.K[i, :2, 2]) > CAMERA_INTRINSICS_TOLERANCE * size):
            return False
        cosine = np.clip((np.trace(cam.R @ self.R[i].T) - 1) / 2, -1.0, 1.0)
        centre_mm = cam.center * unit_scale(calibration.units, "mm")
        return bool(np.degrees(np.arccos(cosine)) <= CAMERA_ANGLE_TOLERANCE_DEG and
                    np.linalg.norm(centre_mm - self.centre_mm[i]) <= CAMERA_CENTRE_TOLERANCE_MM)


@dataclass(frozen=True)
class ProfileTake:
    """A take to build a profile from: its folder, calibration (default ``take/calibration.json``) and the
    frames to use (start, stop) counted as the take's (None: all)."""

    path: Path
    calibration: Path | None = None
    frames: tuple[int, int | None] | None = None


def identity_basis(rig: Rig, samples: np.ndarray, config: FitConfig) -> dict[str, Any]:
    """What a profile's identity and albedo refer to: the tracking rig's vertices and identity modes, or, for
    a rig without them, the smooth neutral correction (its degree and the vertices it is orthogonal over)."""
    geometry = (np.ascontiguousarray(rig.neutral, np.float32), np.ascontiguousarray(rig.faces, np.int64),
                np.ascontiguousarray(rig.identity_deltas, np.float32))      # float32: as a rig file may store it
    basis: dict[str, Any] = {"vertices": int(rig.num_vertices), "identity_modes": int(rig.num_identities),
                             "rig": digest(rig.units, *geometry)}
    if not rig.num_identities and config.neutral_degree > 0:
        basis["neutral_correction"] = {"degree": int(config.neutral_degree),
                                       "samples": digest(np.ascontiguousarray(samples, dtype=np.int64))}
    return basis


def _basis_differences(profile: dict[str, Any], fit: dict[str, Any]) -> list[str]:
    names = {"vertices": "the rig's vertex count", "identity_modes": "the rig's identity modes",
             "rig": "the rig's neutral, faces or identity modes",
             "neutral_correction": "the neutral correction (config keys 'neutral_degree', 'exclude_materials')"}
    return [names.get(k, k) for k in sorted(set(profile) | set(fit)) if profile.get(k) != fit.get(k)]


@dataclass
class PerformerStart:
    """A profile as one take's fit starts from it.

    Attributes:
        identity: [I] float64; identity_information: [I, I] float64.
        albedo, albedo_evidence: [N, 3] float32 at the fit's photometric samples.
        sh: [9, 3]; gains, bias: [C, 3] per camera of the take (1 and 0 for a camera the profile lacks).
        offsets: [C, L, 2] the detector's offsets for the take's cameras (None: not known for them).
    """

    identity: np.ndarray
    identity_information: np.ndarray
    albedo: np.ndarray
    albedo_evidence: np.ndarray
    sh: np.ndarray
    gains: np.ndarray
    bias: np.ndarray
    offsets: np.ndarray | None

    @property
    def plan(self) -> ProfileStart:
        """What the plan needs to know of the profile."""
        return ProfileStart(detector_offsets=self.offsets is not None)

    def landmarks(self, given: Landmarks2D) -> Landmarks2D:
        """The ``given`` landmarks less the detector's offsets, where the profile knows them."""
        return given if self.offsets is None else replace(given, points=given.points - self.offsets)

    def adopt(self, state: SequenceState) -> None:
        """Hand the profile to the take's ``state`` (:meth:`SequenceState.adopt_performer`)."""
        device = state.weights.device

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32, device=device)
        C = len(self.gains)
        evidence = AppearanceStats(response=tensor(np.zeros((5, C, 3))), sh_matrix=tensor(np.zeros((3, 9, 9))),
                                   sh_vector=tensor(np.zeros((3, 9))),
                                   albedo_num=tensor(self.albedo_evidence * self.albedo),
                                   albedo_den=tensor(self.albedo_evidence))
        appearance = Appearance(tensor(self.albedo), tensor(self.sh), tensor(self.gains), tensor(self.bias))
        information = tensor(self.identity_information) if self.identity.size else None
        state.adopt_performer(information, appearance, evidence, self.offsets)


def performer_start(profile: ActorProfile, calibration: Calibration, tracking_rig: Rig, samples: np.ndarray,
                    config: FitConfig) -> PerformerStart:
    """The profile as the fit of a take with ``calibration``'s cameras and ``tracking_rig`` (photometric
    ``samples`` [N]) starts from it.

    Raises:
        FacecapError: the profile was built with another tracking rig (or neutral correction).
    """
    differences = _basis_differences(profile.basis, identity_basis(tracking_rig, samples, config))
    if differences:
        raise FacecapError(f"the actor profile was built with another tracking rig: {', '.join(differences)} "
                           "differ; build the profile with this rig and config")
    matches = profile.camera_matches(calibration)
    measured = [ok and profile.offset_takes[profile.cameras.index(n)] > 0 for n, ok in zip(calibration.names, matches)]
    offsets = None
    if config.landmarks.detected and profile.detector_offsets is not None and all(measured):
        offsets = np.stack([profile.detector_offsets[profile.cameras.index(n)] for n in calibration.names])
    elif config.landmarks.detected:
        unmeasured = [n for n, ok in zip(calibration.names, measured) if not ok]
        log.info("the actor profile has no detector offsets for camera(s) %s as calibrated for this take: a short "
                 "keyframe stage measures them", ", ".join(unmeasured))
    known = [profile.cameras.index(n) if ok else -1 for n, ok in zip(calibration.names, matches)]
    gains = np.stack([profile.gains[i] if i >= 0 else np.ones(3, np.float32) for i in known])
    bias = np.stack([profile.bias[i] if i >= 0 else np.zeros(3, np.float32) for i in known])
    return PerformerStart(identity=profile.identity.copy(), identity_information=profile.identity_information.copy(),
                          albedo=profile.albedo[samples], albedo_evidence=profile.albedo_evidence[samples],
                          sh=profile.sh, gains=gains, bias=bias, offsets=offsets)


def _merged_cameras(previous: ActorProfile | None, calibration: Calibration, gains: np.ndarray, bias: np.ndarray,
                    offsets: np.ndarray | None) -> dict[str, np.ndarray | tuple[str, ...] | None]:
    """The profile's cameras with a take's added: a camera it has, as calibrated then, averages its offsets
    with the take's; a new camera, or one calibrated otherwise, takes the take's."""
    names = list(previous.cameras) if previous is not None else []
    matches = previous.camera_matches(calibration) if previous is not None else [False] * len(calibration.names)
    L = offsets.shape[1] if offsets is not None else (0 if previous is None or previous.detector_offsets is None
                                                       else previous.detector_offsets.shape[1])
    rows: dict[str, dict[str, Any]] = {}
    if previous is not None:
        for i, name in enumerate(previous.cameras):
            rows[name] = {"gains": previous.gains[i], "bias": previous.bias[i], "image_size": previous.image_size[i],
                          "K": previous.K[i], "R": previous.R[i], "centre_mm": previous.centre_mm[i],
                          "offsets": None if previous.detector_offsets is None else previous.detector_offsets[i],
                          "offset_takes": int(previous.offset_takes[i])}
    to_mm = unit_scale(calibration.units, "mm")
    for c, name in enumerate(calibration.names):
        cam = calibration[name]
        row = rows.get(name)
        same = matches[c]
        new_offsets = None if offsets is None else offsets[c]
        count = row["offset_takes"] if (same and row is not None and row["offsets"] is not None) else 0
        if new_offsets is not None:
            merged = new_offsets if count == 0 else (count * row["offsets"] + new_offsets) / (count + 1)
            count += 1
        else:
            merged, count = (row["offsets"], count) if same and row is not None else (None, 0)
        rows[name] = {"gains": gains[c], "bias": bias[c], "image_size": np.asarray(cam.image_size),
                      "K": cam.K, "R": cam.R, "centre_mm": cam.center * to_mm, "offsets": merged,
                      "offset_takes": count}
        if name not in names:
            names.append(name)

    def stack(key: str, dtype: Any) -> np.ndarray:
        return np.stack([np.asarray(rows[n][key], dtype=dtype) for n in names])
    has_offsets = L > 0 and any(rows[n]["offsets"] is not None for n in names)
    detector = np.stack([rows[n]["offsets"] if rows[n]["offsets"] is not None else np.zeros((L, 2))
                         for n in names]).astype(np.float32) if has_offsets else None
    return {"cameras": tuple(names), "gains": stack("gains", np.float32), "bias": stack("bias", np.float32),
            "image_size": stack("image_size", np.int64), "K": stack("K", np.float64), "R": stack("R", np.float64),
            "centre_mm": stack("centre_mm", np.float64), "detector_offsets": detector,
            "offset_takes": np.array([rows[n]["offset_takes"] for n in names], dtype=np.int64)}


def _profile_from_fit(fit: OpenedFit, previous: ActorProfile | None, basis: dict[str, Any],
                      record: dict[str, Any]) -> ActorProfile:
    """The profile after the keyframes of the take ``fit`` were fitted (starting from ``previous``)."""
    state = fit.state
    V = fit.rig.num_vertices
    albedo = previous.albedo.copy() if previous is not None else np.zeros((V, 3), np.float32)
    evidence = previous.albedo_evidence.copy() if previous is not None else np.zeros((V, 3), np.float32)
    albedo[fit.samples] = state.appearance.albedo.float().cpu().numpy()
    evidence[fit.samples] = state.appearance_stats.albedo_den.float().cpu().numpy()
    I = state.identity.numel()
    information = np.zeros((I, I)) if state.identity_information is None else \
        state.identity_information.double().cpu().numpy()
    information = (information + information.T) / 2                   # summed in float32: symmetric to rounding
    cameras = _merged_cameras(previous, fit.calibration, state.appearance.gains.float().cpu().numpy(),
                              state.appearance.bias.float().cpu().numpy(), state.landmark_offsets)
    return ActorProfile(identity=state.identity.double().cpu().numpy(), identity_information=information,
                        albedo=albedo, albedo_evidence=evidence, sh=state.appearance.sh.float().cpu().numpy(),
                        basis=basis, takes=[*(previous.takes if previous is not None else []), record], **cameras)


def build_actor_profile(takes: list[ProfileTake], tracking_rig: Rig, config: FitConfig, work_dir: str | Path,
                        start: ActorProfile | None = None) -> ActorProfile:
    """Fit the keyframes of ``takes`` of one performer in turn and keep what belongs to the person.

    Each take runs the fit's keyframe stage (``config.schedule``'s keyframes, coarse to fine) and, for
    detected landmarks, measures the detector's offsets; it starts from the profile the takes before it
    gave (or ``start``), so the evidence on the identity and albedo adds up over the takes.

    Args:
        takes: the takes (each with its calibration and frames).
        tracking_rig: the rig the fits will track with (the animation rig or a tuned one).
        config: the fit's settings (the landmark source, the schedule's keyframes, the samples).
        work_dir: where the landmark detections are cached.
        start: a profile to add the takes to.
    Raises:
        ConfigError: no takes, no keyframes or no photometric fit in ``config``.
    """
    if not takes:
        raise ConfigError("an actor profile needs at least one take")
    if config.schedule.keyframes < 1 or not config.photometric:
        raise ConfigError("an actor profile is fitted on keyframes: config keys 'schedule.keyframes' must be >= 1 "
                          "and 'photometric' true")
    device = resolve_device(config.device)
    profile = start
    for spec in track(takes, "actor", "take"):
        calibration = load_calibration(spec.calibration or Path(spec.path) / "calibration.json")
        with opened_fit(spec.path, calibration, tracking_rig, config, Path(work_dir), device, spec.frames,
                        actor=profile) as fit:
            basis = identity_basis(tracking_rig, fit.samples, config)
            if profile is not None and _basis_differences(profile.basis, basis):
                raise FacecapError("the actor profile to add to was built with another tracking rig: "
                                   + ", ".join(_basis_differences(profile.basis, basis)) + " differ")
            plan = plan_keyframes(config.schedule, fit.take.num_frames, config.landmarks.detected,
                                  bool(fit.state.identity.numel()), reinitialise=False)
            run_stages(plan, fit.state, fit.take, fit.landmarks, fit.model, fit.rig, config)
            first = fit.take.first_frame
            record = {"take": str(spec.path), "frames": [first, first + fit.take.num_frames],
                      "keyframes": [first + int(f) for f in plan[0].frames], "cameras": list(fit.calibration.names)}
            profile = _profile_from_fit(fit, profile, basis, record)
        log.info("actor profile: %s fitted (%d keyframes)", spec.path, len(record["keyframes"]))
    return profile


def save_actor(profile: ActorProfile, path: str | Path) -> None:
    """Write ``profile`` as a ``facecap-actor`` npz, all or nothing."""
    meta = {"format": ACTOR_FORMAT, "version": ACTOR_VERSION, "albedo_space": ALBEDO_SPACE,
            "cameras": list(profile.cameras), "basis": profile.basis, "takes": profile.takes,
            "facecap": __version__}
    arrays = {k: getattr(profile, k) for k in _ARRAYS}
    if profile.detector_offsets is not None:
        arrays["detector_offsets"] = profile.detector_offsets
    with publishing_files(path) as (tmp,):
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_actor(path: str | Path) -> ActorProfile:
    """Read a ``facecap-actor`` npz; a file that is not one, or is damaged, raises FormatError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"actor profile not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in _ARRAYS}
            offsets = data["detector_offsets"] if "detector_offsets" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, TypeError) as err:
        raise FormatError(f"{path}: not a readable facecap actor profile ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != ACTOR_FORMAT:
        raise FormatError(f"{path}: not a facecap actor profile ('meta' lacks format {ACTOR_FORMAT!r})")
    if meta.get("version") != ACTOR_VERSION or meta.get("albedo_space") != ALBEDO_SPACE:
        raise FormatError(f"{path}: actor profile version {meta.get('version')} with albedo in "
                          f"{meta.get('albedo_space')!r}; this facecap reads version {ACTOR_VERSION} ({ALBEDO_SPACE})")
    cameras = tuple(meta.get("cameras", []))
    I, V, C = len(arrays["identity"]), len(arrays["albedo"]), len(cameras)
    shapes = {"identity_information": (I, I), "albedo": (V, 3), "albedo_evidence": (V, 3), "sh": (9, 3),
              "gains": (C, 3), "bias": (C, 3), "image_size": (C, 2), "K": (C, 3, 3), "R": (C, 3, 3),
              "centre_mm": (C, 3), "offset_takes": (C,)}
    bad = [k for k, shape in shapes.items() if arrays[k].shape != shape]
    if offsets is not None and (offsets.ndim != 3 or offsets.shape[0] != C or offsets.shape[2] != 2):
        bad.append("detector_offsets")
    if bad or not all(np.isfinite(a).all() for a in arrays.values()):
        raise FormatError(f"{path}: actor profile key '{bad[0] if bad else 'arrays'}' has the wrong shape or "
                          "non-finite values")
    return ActorProfile(cameras=cameras, detector_offsets=offsets, basis=meta.get("basis", {}),
                        takes=meta.get("takes", []), **arrays)
