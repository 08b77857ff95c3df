"""Inverse rigging: weights from target meshes (coordinate descent, Rackovic et al. 2024)."""

from facecap.solve.cd import CDConfig, CDResult, DeltaBasis, cd_objective, solve_cd

__all__ = ["DeltaBasis", "CDConfig", "CDResult", "solve_cd", "cd_objective"]
