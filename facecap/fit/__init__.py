"""Analysis-by-synthesis fitting of multi-view takes (``facecap fit``)."""

from facecap.fit.config import FitConfig, LandmarkConfig, LossWeights, ScheduleConfig
from facecap.fit.init import InitConfig, Initialisation, initialise_from_landmarks
from facecap.fit.pipeline import fit_take
from facecap.fit.result import FitResult

__all__ = ["FitConfig", "LandmarkConfig", "LossWeights", "ScheduleConfig", "InitConfig", "Initialisation",
           "initialise_from_landmarks", "FitResult", "fit_take"]
