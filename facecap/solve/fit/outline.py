"""The mesh's outline in each view: where its occluding contour meets the background.

The occluding contour runs where the surface turns from facing a camera to facing away. On
each mesh edge whose ends disagree, the contour point is where the facing cosine, linear along
the edge, crosses zero. Only the outer part of the contour is kept, the points that are the
front surface and have background beside them: a nose's or an ear's inner contours lie in front
of more head and are invisible against it. Those outline points should lie on the outline of
the head in the image (:mod:`facecap.take.silhouette`).
"""

from dataclasses import dataclass

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors
from facecap.solve.fit.appearance import PointZBuffer, facing_cosine, inside_image

__all__ = ["Outline", "mesh_edges", "outline"]

# Where the surface grazes the view, the cell of a contour point also holds surface nearer by about
# r sqrt(2 cell / R) (r, R: the head's radius in world units and in pixels), a few percent of the
# depth; hidden contours (behind the head) lie tens of percent deeper.
OUTLINE_DEPTH_TOLERANCE = 0.05


@dataclass
class Outline:
    """Outline points of a batch, one candidate per mesh edge.

    Attributes:
        pixels: [B, C, E, 2] where each edge's contour point projects (meaningless where not ``on``).
        on: [B, C, E] whether the edge holds an outline point in that view.
        nearest: [B, C, E] the edge's end nearer its contour point (index into the points): the
            point the outline moves with, to first order.
        fraction: [B, C, E] where along its edge the contour point lies (0: the first end).
    """

    pixels: torch.Tensor
    on: torch.Tensor
    nearest: torch.Tensor
    fraction: torch.Tensor


def mesh_edges(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """[E, 2] unique edges of ``faces`` [F, 3] whose ends are both in ``vertices``, as indices into it."""
    position = np.full(int(max(faces.max(), vertices.max())) + 1, -1)
    position[vertices] = np.arange(len(vertices))
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    edges = np.unique(position[edges], axis=0)
    return edges[(edges >= 0).all(axis=1)]


def outline(px: torch.Tensor, X_cam: torch.Tensor | None, normals: torch.Tensor, edges: torch.Tensor,
            cams: CameraTensors, zbuffer: PointZBuffer | None, held: Outline | None = None) -> Outline:
    """Outline points of the surface through points that project to ``px`` [B, C, N, 2], lie at
    ``X_cam`` [B, C, N, 3] in camera coordinates and have unit world ``normals`` [B, N, 3].

    ``edges`` [E, 2] joins the points; ``zbuffer`` holds the whole mesh (what can hide a point or
    stand behind it). Given ``held``, its outline points are kept as the same points of the
    surface, not found again: a step's energy is then a smooth function compared on the same points
    (``X_cam`` and ``zbuffer`` are then not needed).
    """
    first, second = edges[:, 0], edges[:, 1]
    if held is not None:
        a = held.fraction[..., None]
        return Outline(pixels=(1 - a) * px[:, :, first] + a * px[:, :, second], on=held.on, nearest=held.nearest,
                       fraction=held.fraction)
    facing = facing_cosine(X_cam, normals, cams)                           # [B, C, N]
    f0, f1 = facing[..., first], facing[..., second]
    crossing = (f0 > 0) != (f1 > 0)
    a = torch.where(crossing, f0 / torch.where(crossing, f0 - f1, 1.0), 0.0)[..., None]
    pixels = (1 - a) * px[:, :, first] + a * px[:, :, second]
    nearest = torch.where(a[..., 0] < 0.5, first, second)
    depth = ((1 - a) * X_cam[:, :, first] + a * X_cam[:, :, second])[..., 2]
    on = crossing & inside_image(pixels, cams) & (depth > 0) \
        & zbuffer.in_front(pixels, depth, OUTLINE_DEPTH_TOLERANCE) & zbuffer.next_to_background(pixels)
    return Outline(pixels=pixels, on=on, nearest=nearest, fraction=a[..., 0])
