"""The mesh's outline in each view: where its occluding contour meets the background.

The occluding contour runs where the surface turns from facing a camera to facing away. On
each mesh edge whose ends disagree, the contour point is where the facing cosine, linear along
the edge, crosses zero. Only the outer part of the contour is kept, the points that are the
front surface and have background beside them: a nose's or an ear's inner contours lie in front
of more head and are invisible against it. Those outline points should lie on the outline of
the head in the image (:mod:`facecap.take.silhouette`).
"""

from dataclasses import dataclass, replace

import numpy as np
import torch

from facecap.camera.torch_camera import CameraTensors
from facecap.fit.appearance import PointZBuffer, facing_cosine, inside_image

__all__ = ["Outline", "along_edges", "mesh_edges", "outline"]

# Where the surface grazes the view, the cell of a contour point also holds surface nearer by about
# r sqrt(2 cell / R) (r, R: the head's radius in world units and in pixels), a few percent of the
# depth; hidden contours (behind the head) lie tens of percent deeper.
OUTLINE_DEPTH_TOLERANCE = 0.05


@dataclass
class Outline:
    """The outline points of a batch: n of them, on the mesh edges where the outline crosses, per view.

    Attributes:
        frame, camera, edge: [n] the frame, view and mesh edge each point lies on.
        fraction: [n] where along its edge the point lies (0: the first end).
        nearest: [n] the edge's end nearer the point (index into the points): the point the outline
            moves with, to first order.
        pixels: [n, 2] where the point projects.
    """

    frame: torch.Tensor
    camera: torch.Tensor
    edge: torch.Tensor
    fraction: torch.Tensor
    nearest: torch.Tensor
    pixels: torch.Tensor

    def __len__(self) -> int:
        return self.edge.shape[0]

    def subset(self, keep: torch.Tensor) -> "Outline":
        """The points where [n] bool ``keep`` holds."""
        return Outline(*(a[keep] for a in (self.frame, self.camera, self.edge, self.fraction, self.nearest,
                                           self.pixels)))


def along_edges(values: torch.Tensor, frame: torch.Tensor, camera: torch.Tensor, ends: torch.Tensor,
                fraction: torch.Tensor) -> torch.Tensor:
    """Per-point [B, C, N, ...] ``values`` interpolated linearly to points on edges: [n, ...] at ``fraction``
    [n] of the way along the edges ``ends`` [n, 2] (indices into N), in the views ``frame``, ``camera`` [n]."""
    a = fraction.reshape(-1, *(1,) * (values.dim() - 3))
    return (1 - a) * values[frame, camera, ends[:, 0]] + a * values[frame, camera, ends[:, 1]]


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
        return replace(held, pixels=along_edges(px, held.frame, held.camera, edges[held.edge], held.fraction))
    facing = facing_cosine(X_cam, normals, cams)                           # [B, C, N]
    frame, camera, edge = ((facing[..., first] > 0) != (facing[..., second] > 0)).nonzero(as_tuple=True)
    ends = edges[edge]
    f0, f1 = facing[frame, camera, ends[:, 0]], facing[frame, camera, ends[:, 1]]
    a = f0 / (f0 - f1)
    pixels = along_edges(px, frame, camera, ends, a)
    depth = along_edges(X_cam, frame, camera, ends, a)[:, 2]
    crossings = Outline(frame=frame, camera=camera, edge=edge, fraction=a,
                        nearest=torch.where(a < 0.5, ends[:, 0], ends[:, 1]), pixels=pixels)
    on = inside_image(pixels, cams, camera) & (depth > 0) \
        & zbuffer.in_front(pixels, depth, OUTLINE_DEPTH_TOLERANCE, frame, camera) \
        & zbuffer.next_to_background(pixels, frame, camera)
    return crossings.subset(on)
