"""facecap: markerless facial performance capture from multi-view video.

Rooms (one package, one job each): ``rig`` (the face model), ``camera`` (camera models and
calibration files), ``calibrate`` (multi-camera calibration), ``take`` (reading takes, landmarks),
``render`` (rasterisers and shading), ``solve`` (coordinate-descent solver and analysis by
synthesis), ``export`` (animation files, plots), ``tune`` (tracker rig tuning) and ``cli``.
"""

__version__ = "0.1.0"
