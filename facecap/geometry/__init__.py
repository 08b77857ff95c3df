"""Small geometry helpers shared by several rooms: rotations and rigid alignment."""

from facecap.geometry.rotations import (axis_angle_to_matrix, euler_xyz_from_matrix, matrix_from_euler_xyz,
                                        matrix_to_axis_angle, matrix_to_rotation_6d, rigid_procrustes,
                                        rotation_6d_to_matrix, skew_matrix)

__all__ = ["rotation_6d_to_matrix", "matrix_to_rotation_6d", "euler_xyz_from_matrix", "matrix_from_euler_xyz",
           "axis_angle_to_matrix", "matrix_to_axis_angle", "skew_matrix", "rigid_procrustes"]
