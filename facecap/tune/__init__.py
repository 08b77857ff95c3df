"""Tracking-rig tuning (Omens, Thurman, Yu, Fedkiw 2025): make the tracker's controls mean what the animators meant."""

from facecap.tune.api import TuneConfig, TuneResult, tune_rig
from facecap.tune.simon_says import ExpressionSet, PerformerConfig, load_expressions, make_simon_says, save_expressions

__all__ = ["TuneConfig", "TuneResult", "tune_rig", "ExpressionSet", "PerformerConfig", "load_expressions",
           "save_expressions", "make_simon_says"]
