"""Head stabilisation against the rig's head-space meshes, mesh files, the weight plot."""

import matplotlib.image
import numpy as np
import pytest

from facecap.animation import Animation
from facecap.errors import ShapeError
from facecap.export import load_mesh_sequence, stabilise_meshes, write_mesh_sequence
from facecap.export.plot import plot_weight_curves
from facecap.geometry.rotations import matrix_from_euler_xyz
from facecap.rig import Rig, evaluate_rig
from facecap.rig.obj import load_obj

NAMES = ("jawOpen", "eyeBlink_L", "eyeBlink_R")


@pytest.fixture
def rig(rng) -> Rig:
    V = 8
    return Rig(units="cm", neutral=rng.normal(size=(V, 3)),
               faces=np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 0]], dtype=np.int32), shape_names=NAMES,
               shape_deltas=rng.normal(size=(3, V, 3)), corrective_keys=np.array([[0, 1, -1, -1]], np.int32),
               corrective_deltas=rng.normal(size=(1, V, 3)), identity_deltas=np.zeros((0, V, 3)))


@pytest.fixture
def anim(rng) -> Animation:
    T = 6
    return Animation(NAMES, rng.uniform(size=(T, 3)), matrix_from_euler_xyz(rng.uniform(-2, 2, size=(T, 3))),
                     rng.normal(size=(T, 3)) * 300, fps=30.0, units="mm", start_timecode="00:40:28:09")


def test_stabilised_meshes_equal_head_space(rig, anim):
    rig_mm = rig.in_units("mm")  # the animation's world is in mm, the rig in cm
    world = evaluate_rig(rig_mm, anim.weights, R=anim.R, t=anim.t)
    head = stabilise_meshes(world, anim)
    np.testing.assert_allclose(head, evaluate_rig(rig_mm, anim.weights), atol=1e-9)
    np.testing.assert_allclose(head, 10 * evaluate_rig(rig, anim.weights), atol=1e-9)
    with pytest.raises(ShapeError, match="world_verts must have shape"):
        stabilise_meshes(world[:2], anim)


def test_mesh_sequence_files(tmp_path, rig, rng):
    verts = rng.normal(size=(3, rig.num_vertices, 3))
    path = write_mesh_sequence(verts, rig.faces, tmp_path / "m.npz", units="mm")
    back, faces = load_mesh_sequence(path)
    np.testing.assert_allclose(back, verts, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(faces, rig.faces)
    with np.load(path) as data:
        assert str(data["units"]) == "mm" and data["vertices"].dtype == np.float32
    folder = write_mesh_sequence(verts, rig.faces, tmp_path / "objs", as_obj=True)
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.obj", "frame_000001.obj", "frame_000002.obj"]
    np.testing.assert_allclose(load_obj(folder / "frame_000002.obj").vertices, verts[2], rtol=1e-8)
    with pytest.raises(ShapeError, match="faces index vertices"):
        write_mesh_sequence(verts, rig.faces + 5, tmp_path / "x.npz")
    with pytest.raises(ShapeError, match="verts must have shape"):
        write_mesh_sequence(verts[0], rig.faces, tmp_path / "x.npz")


def test_plot(tmp_path, anim):
    weights = anim.weights.copy()
    weights[:, 1] = 0.0  # inactive: left out
    path = plot_weight_curves(Animation(NAMES, weights, anim.R, anim.t), tmp_path / "w.png")
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 400 and image.std() > 0
    quiet = Animation(NAMES, np.zeros_like(weights), anim.R, anim.t)
    assert plot_weight_curves(quiet, tmp_path / "q.png").is_file()


def test_meshes_written_in_chunks_read_back_as_one_sequence(tmp_path):
    """Chunks of frames stream into the npz (a long take never sits in memory whole) and np.load reads them
    as the one [T, V, 3] array; a chunk count that does not add up is an error."""
    rng = np.random.default_rng(3)
    verts = rng.normal(size=(10, 7, 3))
    faces = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    path = write_mesh_sequence((verts[i:i + 4] for i in range(0, 10, 4)), faces, tmp_path / "m.npz", units="mm",
                               num_frames=10)
    loaded, loaded_faces = load_mesh_sequence(path)
    np.testing.assert_array_equal(loaded, verts.astype(np.float32))
    np.testing.assert_array_equal(loaded_faces, faces)
    with np.load(path) as data:
        assert str(data["units"]) == "mm"
    with pytest.raises(ShapeError, match="8 frames of vertices for num_frames = 10"):
        write_mesh_sequence((verts[i:i + 4] for i in range(0, 8, 4)), faces, tmp_path / "short.npz", num_frames=10)
