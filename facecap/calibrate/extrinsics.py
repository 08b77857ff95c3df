"""Initial camera and board poses of a rig: pairwise relations over a spanning tree of co-visibility.

Poses are 4 x 4 float64 matrices ``T_a_b`` mapping frame b to frame a (``x_a = T_a_b @ x_b``); lengths
in the board's units. The world is the root camera. Each camera pair that saw the board at the same
instants gets a relative pose (chordal L2 mean of the rotations, median of the translations, as in
Hartley et al. 2013, "Rotation averaging"); the maximum spanning tree of the shared-view counts
(Prim) chains these relations from the root to every camera.
"""

import logging

import cv2
import numpy as np

from facecap.errors import FacecapError

__all__ = ["pose_matrix", "mean_rotation", "average_poses", "covisibility", "init_camera_poses", "init_frame_poses"]

log = logging.getLogger(__name__)


def pose_matrix(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """[4, 4] from a Rodrigues vector [3] and a translation [3]."""
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
    T[:3, 3] = np.ravel(tvec)
    return T


def mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """Chordal L2 mean of [N, 3, 3] rotations: the rotation nearest (Frobenius) to their sum."""
    U, _, Vt = np.linalg.svd(rotations.sum(axis=0))
    return U @ np.diag([1.0, 1.0, np.linalg.det(U @ Vt)]) @ Vt


def average_poses(poses: np.ndarray) -> np.ndarray:
    """[4, 4] robust average of [N, 4, 4] poses: mean rotation, median translation."""
    T = np.eye(4)
    T[:3, :3] = mean_rotation(poses[:, :3, :3])
    T[:3, 3] = np.median(poses[:, :3, 3], axis=0)
    return T


def covisibility(board_in_cam: dict[tuple[int, int], np.ndarray], n_cameras: int) -> np.ndarray:
    """[C, C] int: how many instants each pair of cameras saw the board together.

    board_in_cam: (camera index, frame index) -> T_cam_board [4, 4].
    """
    frames: dict[int, list[int]] = {}
    for cam, frame in board_in_cam:
        frames.setdefault(frame, []).append(cam)
    counts = np.zeros((n_cameras, n_cameras), dtype=np.int64)
    for cams in frames.values():
        idx = np.array(cams)
        counts[np.ix_(idx, idx)] += 1
    np.fill_diagonal(counts, 0)
    return counts


def init_camera_poses(board_in_cam: dict[tuple[int, int], np.ndarray], names: list[str]) -> np.ndarray:
    """[C, 4, 4] T_cam_world with camera 0 as the world, chained over the maximum spanning tree.

    Raises FacecapError naming the cameras that share no view, directly or through others, with camera 0.
    """
    n = len(names)
    counts = covisibility(board_in_cam, n)
    poses = np.full((n, 4, 4), np.nan)
    poses[0] = np.eye(4)
    in_tree = {0}
    while len(in_tree) < n:
        outside = [j for j in range(n) if j not in in_tree]
        best = max(((counts[i, j], i, j) for i in in_tree for j in outside), default=(0, -1, -1))
        count, parent, child = best
        if count == 0:
            raise FacecapError(
                f"cameras {', '.join(names[j] for j in outside)} share no board view with camera '{names[0]}' "
                f"(directly or through other cameras): take images where the board is seen by them and a "
                f"connected camera at the same instant")
        shared = [f for (c, f) in board_in_cam if c == parent and (child, f) in board_in_cam]
        relative = np.stack([board_in_cam[(child, f)] @ np.linalg.inv(board_in_cam[(parent, f)]) for f in shared])
        poses[child] = average_poses(relative) @ poses[parent]
        log.debug("camera %s placed from %s over %d shared views", names[child], names[parent], count)
        in_tree.add(child)
    return poses


def init_frame_poses(board_in_cam: dict[tuple[int, int], np.ndarray], cam_poses: np.ndarray) -> dict[int, np.ndarray]:
    """frame index -> T_world_board [4, 4], averaged over the cameras that saw it."""
    per_frame: dict[int, list[np.ndarray]] = {}
    for (cam, frame), T_cb in board_in_cam.items():
        per_frame.setdefault(frame, []).append(np.linalg.inv(cam_poses[cam]) @ T_cb)
    return {f: average_poses(np.stack(p)) for f, p in per_frame.items()}
