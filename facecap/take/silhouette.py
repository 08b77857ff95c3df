"""The head's silhouette in a frame shot against a plain background, as a signed distance image.

Photometry pins the surface only up to sliding under a texture that the fit estimates itself: a
head moved by a few millimetres, with an identity that compensates, looks almost the same. Its
outline against the background does not slide. The background is modelled per frame as a
smooth colour field (a polynomial per channel) fitted robustly to the image's top, left and
right border bands, then to all that lies away from the head; whatever differs from it is the
head. A frame whose border the smooth model cannot explain (a cluttered room) has no silhouette,
and the fit goes on without one. Hair as dark as the backdrop is lost to the backdrop: the fit's
outline points there end far from the image's outline, and its redescending loss ignores them.
"""

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["SilhouetteConfig", "foreground_mask", "signed_distance", "silhouette_distance"]

FIT_PIXELS = 8000  # background pixels a colour field is fitted to


@dataclass(frozen=True)
class SilhouetteConfig:
    """How the background is told from the head (colours in [0, 1]).

    Attributes:
        border: width of the border bands the background is fitted to, as a fraction of the image size.
        min_contrast: the least colour distance from the background that counts as foreground.
        noise_multiple: ... or this many times the background's robust noise, if that is more.
        max_background_noise: a background noisier than this (robust σ) is not plain: no silhouette.
        min_background_inliers: fraction of the border bands the smooth model must explain.
        max_distance_px: the signed distance is clipped here (far from the outline it carries no detail).
    """

    border: float = 0.03
    min_contrast: float = 0.08
    noise_multiple: float = 6.0
    max_background_noise: float = 0.03
    min_background_inliers: float = 0.7
    max_distance_px: float = 64.0


def _polynomial_features(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    return np.stack([x ** i * y ** j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=-1)


def _robust_fit(image: np.ndarray, region: np.ndarray, degree: int) -> tuple[np.ndarray, float, float]:
    """Polynomial colour field through the [H, W] ``region``'s pixels, outliers trimmed: coefficients, σ,
    inlier fraction. About FIT_PIXELS of them (every k-th in raster order) are enough for a smooth field."""
    H, W = image.shape[:2]
    ys, xs = np.nonzero(region)
    step = max(1, len(xs) // FIT_PIXELS)
    xs, ys = xs[::step], ys[::step]
    A = _polynomial_features(xs / W - 0.5, ys / H - 0.5, degree)
    colours = image[ys, xs].astype(np.float64)
    inliers = np.ones(len(xs), dtype=bool)
    for _ in range(4):
        kept = A[inliers]
        coef = np.linalg.solve(kept.T @ kept + 1e-9 * np.eye(A.shape[1]), kept.T @ colours[inliers])
        residual = np.linalg.norm(colours - A @ coef, axis=-1)
        sigma = 1.4826 * float(np.median(residual[inliers])) + 1e-4
        inliers = residual < 3 * sigma + 1e-3
    return coef, sigma, float(inliers.mean())


def _field(coef: np.ndarray, shape: tuple[int, int], degree: int) -> np.ndarray:
    """The polynomial colour field [3, H, W] at every pixel, separably: per channel, one GEMM of
    (powers of y) @ C with (powers of x)ᵀ (channel planes, so that the full-resolution arithmetic
    on it runs over contiguous memory)."""
    H, W = shape
    terms = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    C = np.zeros((3, degree + 1, degree + 1))
    for (i, j), c in zip(terms, coef):
        C[:, j, i] = c
    y_powers = (np.arange(H) / H - 0.5)[:, None] ** np.arange(degree + 1)
    x_powers = (np.arange(W) / W - 0.5)[:, None] ** np.arange(degree + 1)
    return np.einsum("yj,cji->cyi", y_powers, C).astype(np.float32) @ x_powers.T.astype(np.float32)


def _background_model(image: np.ndarray, planes: np.ndarray,
                      config: SilhouetteConfig) -> tuple[np.ndarray, float] | None:
    """The smooth background [3, H, W] behind ``image`` [H, W, 3] in [0, 1] (``planes``: the same as
    [3, H, W]), and its robust noise σ.

    A quadratic through the border bands first; then, with the head roughly known, a cubic through
    everything well away from it (lights and lens fall-off shade a backdrop unevenly). None when the
    border bands are not a plain background.
    """
    H, W = image.shape[:2]
    band = max(2, round(config.border * min(H, W)))
    region = np.zeros((H, W), dtype=bool)
    region[:band], region[:, :band], region[:, -band:] = True, True, True
    coef, sigma, inliers = _robust_fit(image, region, degree=2)
    if sigma > config.max_background_noise or inliers < config.min_background_inliers:
        return None
    head = _differs(planes, _field(coef, (H, W), 2), sigma, config)
    away = cv2.dilate(head.astype(np.uint8), np.ones((2 * band + 1, 2 * band + 1), np.uint8)) == 0
    coef, sigma, _ = _robust_fit(image, away, degree=3)
    return _field(coef, (H, W), 3), sigma


def _differs(planes: np.ndarray, background: np.ndarray, sigma: float, config: SilhouetteConfig) -> np.ndarray:
    difference = planes - background
    difference *= difference
    threshold = max(config.min_contrast, config.noise_multiple * sigma)
    return difference.sum(0) > threshold * threshold


def foreground_mask(image: np.ndarray, config: SilhouetteConfig = SilhouetteConfig()) -> np.ndarray | None:
    """[H, W] bool: the largest connected region that differs from the background, holes filled; or None."""
    planes = np.ascontiguousarray(image.transpose(2, 0, 1))
    model = _background_model(image, planes, config)
    if model is None:
        return None
    background, sigma = model
    mask = _differs(planes, background, sigma, config).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def signed_distance(mask: np.ndarray, clip: float) -> np.ndarray:
    """[H, W] float32 distance in pixels to the mask's outline: positive outside, negative inside,
    clipped to ±``clip``.

    Pixel centres sit half a pixel from the outline between two pixels, hence the 0.5 offsets. The
    distance transforms run on the mask's bounding box grown by ``clip``: beyond it every distance
    is clipped anyway, and a head fills a fraction of a frame.
    """
    distance = np.full(mask.shape, clip, dtype=np.float32)
    ys, xs = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    if len(ys) == 0:
        return distance
    margin = int(np.ceil(clip)) + 1
    box = np.s_[max(ys[0] - margin, 0):ys[-1] + margin + 1, max(xs[0] - margin, 0):xs[-1] + margin + 1]
    inside = mask[box].astype(np.uint8)
    outside_distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside_distance = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    distance[box] = np.clip(np.where(inside, 0.5 - inside_distance, outside_distance - 0.5), -clip, clip)
    return distance


def silhouette_distance(image: np.ndarray, config: SilhouetteConfig = SilhouetteConfig()) -> np.ndarray | None:
    """The signed distance [H, W] to the head's outline in ``image`` [H, W, 3] (colours in [0, 1]), or None."""
    mask = foreground_mask(image, config)
    return None if mask is None else signed_distance(mask, config.max_distance_px)
