"""The loss weights as a take needs them: the config's, scaled once for the face's resolution and brightness."""

import logging
from dataclasses import dataclass, replace

import numpy as np

from facecap.fit.config import REFERENCE_BRIGHTNESS, LossWeights

__all__ = ["TakeLoss", "scale_loss"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TakeLoss:
    """The loss weights every photometric stage of a take uses, and what they were scaled by.

    Attributes:
        weights: the config's loss weights scaled for the take (see :func:`scale_loss`).
        pixels_per_mm: how finely the cameras resolve the face at its initial poses.
        brightness: the face's median colour in [0, 1] in the first frames read, or NaN where no face
            colours were seen (the photometric term then stays as configured).
    """

    weights: LossWeights
    pixels_per_mm: float
    brightness: float


def scale_loss(loss: LossWeights, pixels_per_mm: float, brightness: float, detected_landmarks: bool) -> TakeLoss:
    """``loss`` for a take whose face is imaged at ``pixels_per_mm`` with median colour ``brightness``.

    - Sparsity: ``l1`` times the pixels per millimetre. A shape's photometric evidence comes mostly from
      the edges it moves (lids, lips): a sharp edge changes colour by a step per pixel it moves, so the
      evidence for a millimetre grows with the pixels per millimetre, and so must the prior it is
      weighed against.
    - Colour: differences are in proportion to the face's colours, since a face half as bright (darker
      skin, less light, a shorter exposure) shows every edge and texture at half the contrast. With
      ``b`` = brightness / REFERENCE_BRIGHTNESS, Charbonnier's scale times ``b`` and the weight over ``b``
      make the term the same on such a take, so that it keeps its balance with the pixel-based terms
      and the sparsity prior.
    - Landmarks: a detector's points weigh ``landmark_detected`` (they sit millimetres from the rig's
      landmark vertices), a landmarks file's ``landmark``.
    """
    scaled = replace(loss, l1=loss.l1 * pixels_per_mm)
    log.info("the face is imaged at %.2f px/mm: l1 sparsity %.4f", pixels_per_mm, scaled.l1)
    if detected_landmarks:
        scaled = replace(scaled, landmark=loss.landmark_detected)
    if not np.isfinite(brightness) or brightness <= 0:
        log.warning("no face colours seen at the initial head poses: the photometric term is left as configured")
        return TakeLoss(scaled, pixels_per_mm, float("nan"))
    b = brightness / REFERENCE_BRIGHTNESS
    scaled = replace(scaled, photometric=loss.photometric / b, photometric_eps=loss.photometric_eps * b)
    log.info("the face's median colour is %.2f: photometric weight %.3g, Charbonnier scale %.3g", brightness,
             scaled.photometric, scaled.photometric_eps)
    return TakeLoss(scaled, pixels_per_mm, float(brightness))
