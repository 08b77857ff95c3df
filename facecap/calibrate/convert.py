"""Import calibrations written by other tools into facecap's Calibration (docs/formats.md §1).

Formats and the assumptions made about them:

- ``opencv``: cv2.FileStorage YAML/XML as OpenCV's samples write them. calibration.cpp's output
  (``camera_matrix``, ``distortion_coefficients``, ``image_width``, ``image_height``) is one camera;
  stereo_calib.cpp's ``intrinsics.yml`` (``M1 D1 M2 D2``, no image size: give ``image_size``) is two;
  its ``extrinsics.yml`` (``R``, ``T``: ``x_cam2 = R x_cam1 + T``) places the second camera of the
  intrinsics given with it. Translations are in the calibration's square-size unit (stereo_calib
  defaults to a square size of 1, so pass ``scale`` = the square size). The first camera is the world.
- ``multical``: calibration.json of multical (github.com/oliver-batchelor/multical): ``cameras
  {name: {model, image_size, K, dist}}`` and ``camera_poses {name | name_to_master: {R, T}}``; R, T map
  the master camera's frame to the camera's (multical's extrinsic convention); units are the board's,
  metres for multical's example boards.
- ``fpc``: the fpc-diffrend calibration.json: cameras as a list of dicts or a dict of dicts (optionally
  under ``cameras``), each with ``intrinsic`` ([3, 3] K or [fx, fy, cx, cy]), ``distortion`` (OpenCV
  order), ``rotation`` ([3, 3] or a Rodrigues [3], world to camera as cv2.calibrateCamera's rvecs),
  ``translation`` [3]; image size from ``image_size``/``resolution``/``width``+``height`` or ``image_size``.
"""

import json
import logging
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from facecap.camera.model import Calibration, Camera, calibration_from_dict
from facecap.errors import FormatError

__all__ = ["convert_calibration", "detect_format", "ConvertFormat"]

log = logging.getLogger(__name__)

ConvertFormat = Literal["auto", "opencv", "multical", "fpc", "facecap"]
DEFAULT_UNITS = {"opencv": "mm", "multical": "m", "fpc": "mm"}
_K_KEYS = ("camera_matrix", "cameraMatrix", "K")
_DIST_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FormatError(f"{path}: not readable JSON ({err})") from err


def detect_format(path: Path) -> str:
    """'opencv' for YAML/XML, else from the JSON keys: facecap, multical or fpc."""
    if path.suffix.lower() in (".yml", ".yaml", ".xml"):
        return "opencv"
    data = _read_json(path)
    if isinstance(data, dict) and data.get("format") == "facecap-calibration":
        return "facecap"
    if isinstance(data, dict) and "camera_poses" in data:
        return "multical"
    return "fpc"


def _node(fs: "cv2.FileStorage", keys: tuple[str, ...]) -> np.ndarray | None:
    for key in keys:
        node = fs.getNode(key)
        if not node.empty():
            mat = node.mat()
            return None if mat is None else np.asarray(mat, dtype=np.float64)
    return None


def _size(image_size: tuple[int, int] | None, where: str) -> tuple[int, int]:
    if image_size is None:
        raise FormatError(f"{where} does not record the image size: pass it (--image-size WIDTHxHEIGHT)")
    return (int(image_size[0]), int(image_size[1]))


def _read_opencv(path: Path, image_size: tuple[int, int] | None) -> tuple[list[tuple], tuple | None]:
    """([(K, dist, image_size)], (R, T) or None) of one FileStorage file."""
    if not path.is_file():
        raise FormatError(f"calibration file not found: {path}")
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    if not fs.isOpened():
        raise FormatError(f"{path}: OpenCV cannot read it as YAML/XML (cv2.FileStorage)")
    try:
        cams = []
        K = _node(fs, _K_KEYS)
        if K is not None:
            w, h = fs.getNode("image_width"), fs.getNode("image_height")
            size = (int(w.real()), int(h.real())) if not w.empty() and not h.empty() else _size(image_size, str(path))
            cams.append((K, _node(fs, _DIST_KEYS), size))
        for i in (1, 2):
            Ki = _node(fs, (f"M{i}",))
            if Ki is not None:
                cams.append((Ki, _node(fs, (f"D{i}",)), _size(image_size, str(path))))
        R, T = _node(fs, ("R",)), _node(fs, ("T",))
        stereo = (R, T.ravel()) if R is not None and T is not None else None
        if not cams and stereo is None:
            if not fs.getNode("imagelist").empty() or not fs.getNode("images").empty():
                raise FormatError(f"{path} is an OpenCV image list, not a calibration: calibrate from its images "
                                  f"with 'facecap calibrate'")
            raise FormatError(f"{path}: no camera matrix ({', '.join(_K_KEYS)}, M1, M2) or stereo R/T; "
                              f"keys: {fs.root().keys()}")
        return cams, stereo
    finally:
        fs.release()


def _from_opencv(paths: list[Path], image_size: tuple[int, int] | None, scale: float) -> list[Camera]:
    intrinsics, stereo = [], None
    for path in paths:
        cams, rt = _read_opencv(path, image_size)
        intrinsics += cams
        stereo = rt if rt is not None else stereo
    if not intrinsics:
        raise FormatError(f"{', '.join(map(str, paths))}: stereo R/T without camera intrinsics; give the "
                          f"intrinsics file too")
    poses = [(np.eye(3), np.zeros(3)) for _ in intrinsics]
    if stereo is not None:
        if len(intrinsics) != 2:
            raise FormatError(f"stereo R/T needs exactly two cameras' intrinsics, got {len(intrinsics)}")
        poses[1] = (stereo[0], stereo[1] * scale)
    elif len(intrinsics) > 1:
        log.warning("no extrinsics given: every camera is placed at the origin")
    return [Camera(f"cam{i}", size, K, np.zeros(0) if d is None else d.ravel(), R, t)
            for i, ((K, d, size), (R, t)) in enumerate(zip(intrinsics, poses))]


def _matrix(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != int(np.prod(shape)):
        raise FormatError(f"{where}: expected {int(np.prod(shape))} numbers, got shape {list(arr.shape)}")
    return arr.reshape(shape)


def _from_multical(path: Path, scale: float) -> list[Camera]:
    data = _read_json(path)
    cams_in, poses_in = data.get("cameras"), data.get("camera_poses", {})
    if not isinstance(cams_in, dict) or not cams_in:
        raise FormatError(f"{path}: multical 'cameras' must map names to cameras")
    poses = {}
    for key, pose in poses_in.items():
        poses[key.split("_to_")[0]] = pose
    cameras = []
    for name, cam in cams_in.items():
        where = f"{path}: camera '{name}'"
        try:
            pose = poses.get(name, {"R": np.eye(3).tolist(), "T": [0, 0, 0]})
            cameras.append(Camera(name, tuple(int(v) for v in cam["image_size"]), _matrix(cam["K"], (3, 3), where),
                                  np.asarray(cam["dist"], np.float64).ravel(), _matrix(pose["R"], (3, 3), where),
                                  _matrix(pose["T"], (3,), where) * scale))
        except KeyError as err:
            raise FormatError(f"{where}: key {err} is missing") from err
    return cameras


def _fpc_camera(name: str, cam: dict[str, Any], where: str, image_size: tuple[int, int] | None, scale: float) -> Camera:
    try:
        k = np.asarray(cam["intrinsic"], np.float64)
        if k.size == 4:
            k = np.array([[k[0], 0, k[2]], [0, k[1], k[3]], [0, 0, 1]])
        rot = np.asarray(cam["rotation"], np.float64)
        R = cv2.Rodrigues(rot.reshape(3))[0] if rot.size == 3 else _matrix(rot, (3, 3), where)
        t = _matrix(cam["translation"], (3,), where) * scale
        dist = np.asarray(cam.get("distortion", []), np.float64).ravel()
    except KeyError as err:
        raise FormatError(f"{where}: key {err} is missing (fpc cameras have intrinsic, distortion, rotation, "
                          f"translation)") from err
    size = cam.get("image_size") or cam.get("resolution")
    if size is None and "width" in cam and "height" in cam:
        size = (cam["width"], cam["height"])
    return Camera(name, _size(size or image_size, where), _matrix(k, (3, 3), where), dist, R, t)


def _from_fpc(path: Path, image_size: tuple[int, int] | None, scale: float) -> list[Camera]:
    data = _read_json(path)
    if isinstance(data, dict) and "cameras" in data:
        data = data["cameras"]
    if isinstance(data, list):
        items = [(str(c.get("name", f"cam{i}")) if isinstance(c, dict) else f"cam{i}", c) for i, c in enumerate(data)]
    elif isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    else:
        raise FormatError(f"{path}: expected a list or mapping of cameras")
    if not items or not all(isinstance(c, dict) for _, c in items):
        raise FormatError(f"{path}: expected a non-empty list or mapping of camera objects")
    return [_fpc_camera(n, c, f"{path}: camera '{n}'", image_size, scale) for n, c in items]


def convert_calibration(paths: list[str | Path], fmt: ConvertFormat = "auto", units: str | None = None,
                        image_size: tuple[int, int] | None = None, names: list[str] | None = None,
                        scale: float = 1.0) -> Calibration:
    """A Calibration from another tool's files (see the module docstring for each format's assumptions).

    ``scale`` multiplies translations (e.g. the square size when the source used unit squares);
    ``units`` names the result's units (per-format default); ``names`` renames the cameras in order.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise FormatError("no calibration files to convert")
    for p in paths:
        if not p.is_file():
            raise FormatError(f"calibration file not found: {p}")
    kinds = {detect_format(p) if fmt == "auto" else fmt for p in paths}
    if len(kinds) != 1:
        raise FormatError(f"the files mix formats ({', '.join(sorted(kinds))}); convert one format at a time")
    kind = kinds.pop()
    if kind != "opencv" and len(paths) != 1:
        raise FormatError(f"{kind} calibrations are one file, got {len(paths)}")
    if kind == "facecap":
        calib = calibration_from_dict(_read_json(paths[0]), str(paths[0]))
        cameras, units = list(calib.cameras), units or calib.units
    elif kind == "opencv":
        cameras = _from_opencv(paths, image_size, scale)
    elif kind == "multical":
        cameras = _from_multical(paths[0], scale)
    else:
        cameras = _from_fpc(paths[0], image_size, scale)
    if names is not None:
        if len(names) != len(cameras):
            raise FormatError(f"{len(names)} names for {len(cameras)} cameras ({', '.join(c.name for c in cameras)})")
        cameras = [Camera(n, c.image_size, c.K, c.dist, c.R, c.t) for n, c in zip(names, cameras)]
    units = units or DEFAULT_UNITS[kind]
    log.info("converted %d cameras from %s (%s, units %s)", len(cameras), ", ".join(map(str, paths)), kind, units)
    return Calibration(units, tuple(cameras), extra={"converted_from": [str(p) for p in paths], "source_format": kind})
