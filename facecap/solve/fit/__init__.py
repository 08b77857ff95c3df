"""Analysis-by-synthesis fitting of multi-view takes (``facecap fit``)."""

from facecap.solve.fit.config import FitConfig, LandmarkConfig, LossWeights, ScheduleConfig
from facecap.solve.fit.init import InitConfig, Initialisation, initialise_from_landmarks
from facecap.solve.fit.pipeline import FitResult, fit_take

__all__ = ["FitConfig", "LandmarkConfig", "LossWeights", "ScheduleConfig", "InitConfig", "Initialisation",
           "initialise_from_landmarks", "FitResult", "fit_take"]
