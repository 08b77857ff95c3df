"""The built-in demo head: a valid, well-formed, plausible rig with local, mirrored, distinct shapes."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from facecap.errors import ConfigError
from facecap.rig import evaluate_rig, load_rig, save_rig
from facecap.rig.demo_head import DemoHeadConfig, build_demo_head

REQUIRED = ("jawOpen", "mouthSmile_L", "mouthSmile_R", "eyeBlink_L", "eyeBlink_R", "browInnerUp_L", "browInnerUp_R",
            "browOuterUp_L", "browOuterUp_R", "browDown_L", "browDown_R", "mouthPucker", "mouthFunnel",
            "mouthFrown_L", "mouthFrown_R", "cheekPuff_L", "cheekPuff_R", "jawLeft", "jawRight", "mouthClose",
            "noseSneer_L", "noseSneer_R")
MIRROR = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def rig():
    return build_demo_head()


@pytest.fixture(scope="module")
def mirror_index(rig):
    """[V] index of each vertex's mirror image (x -> -x), matched with the jaw open so the lips' copies differ."""
    key = posed(rig, jawOpen=1.0)
    dist, index = cKDTree(key).query(key * MIRROR)
    assert dist.max() < 1e-6
    return index


def posed(rig, **weights) -> np.ndarray:
    w = np.zeros(rig.num_shapes)
    for name, value in weights.items():
        w[rig.shape_index(name)] = value
    return evaluate_rig(rig, w).reshape(-1, 3)


def test_size_units_and_proportions(rig):
    assert 5000 <= rig.num_vertices <= 20000
    assert rig.units == "cm"
    lo, hi = rig.neutral.min(0), rig.neutral.max(0)
    assert 14.0 < hi[0] - lo[0] < 17.5          # head width incl. ears
    lm = rig.neutral[rig.landmark_vertices]
    assert 21.0 < hi[1] - lm[8, 1] < 25.0       # crown to chin
    assert lm[30, 2] == pytest.approx(hi[2])    # the nose tip is the front-most point, facing +z


def test_save_load_round_trip(rig, tmp_path):
    save_rig(rig, tmp_path / "demo.npz")
    back = load_rig(tmp_path / "demo.npz")
    assert back.shape_names == rig.shape_names and back.material_names == rig.material_names
    np.testing.assert_allclose(back.neutral, rig.neutral, atol=1e-5)
    np.testing.assert_allclose(back.shape_deltas, rig.shape_deltas, atol=1e-5)
    np.testing.assert_allclose(back.corrective_deltas, rig.corrective_deltas, atol=1e-5)
    np.testing.assert_array_equal(back.corrective_keys, rig.corrective_keys)
    np.testing.assert_array_equal(back.landmark_vertices, rig.landmark_vertices)
    np.testing.assert_array_equal(back.texture, rig.texture)
    np.testing.assert_array_equal(back.uv_faces, rig.uv_faces)


def test_triangles_consistently_oriented_outwards(rig):
    f = rig.faces
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # each edge used once per direction
    undirected, counts = np.unique(np.sort(directed, 1), axis=0, return_counts=True)
    assert counts.max() == 2
    boundary = np.unique(undirected[counts == 1])
    assert rig.neutral[boundary, 1].max() < -8.0  # the only opening is the neck
    a, b, c = (rig.neutral[f[:, k]] for k in range(3))
    assert np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0 > 1000.0  # positive volume (cm^3)
    skin = rig.face_material == rig.material_names.index("skin")
    normals = np.cross(b - a, c - a)[skin]
    outward = (normals * (a[skin] - np.array([0.0, 0.8, 0.6]))).sum(1) > 0
    assert outward.mean() > 0.99


def test_required_shapes_and_rig_parts(rig):
    assert set(REQUIRED) <= set(rig.shape_names)
    assert rig.landmark_scheme == "multipie68" and rig.landmark_vertices.shape == (68,)
    assert rig.texture.shape == (1, 512, 512, 3) and rig.texture.dtype == np.uint8
    assert rig.num_identities == 5 and rig.num_correctives >= 3
    keys = rig.corrective_keys
    assert ((keys >= 0).sum(1) >= 2).all() and (keys[:, -1] == -1).all()
    named = {tuple(sorted(rig.shape_names[k] for k in row if k >= 0)) for row in keys}
    assert ("jawOpen", "mouthFunnel") in named and ("jawOpen", "mouthSmile_L", "mouthSmile_R") in named
    assert 0.2 < np.linalg.norm(rig.identity_deltas, axis=2).max() < 1.5


@pytest.mark.parametrize("name", [n for n in REQUIRED if n.endswith("_L")] + ["jawLeft"])
def test_left_shapes_stay_on_the_left(rig, name):
    moved = np.linalg.norm(rig.shape_deltas[rig.shape_index(name)], axis=1)
    right_half = rig.neutral[:, 0] < -0.5
    assert (moved[right_half] > 0.05 * moved.max()).mean() < 0.01 or name == "jawLeft"
    if name != "jawLeft":
        assert moved[right_half].max() < 0.1 * moved.max()


def test_pairs_mirror_each_other(rig, mirror_index):
    for name in rig.shape_names:
        if name.endswith("_L") or name in ("jawLeft", "mouthLeft"):
            other = {"jawLeft": "jawRight", "mouthLeft": "mouthRight"}.get(name, name[:-2] + "_R")
            left = rig.shape_deltas[rig.shape_index(name)]
            right = rig.shape_deltas[rig.shape_index(other)]
            np.testing.assert_allclose(right[mirror_index] * MIRROR, left, atol=1e-9, err_msg=name)


def test_magnitudes(rig):
    lm = rig.landmark_vertices
    neutral = rig.neutral
    jaw = posed(rig, jawOpen=1.0)
    assert 1.0 < np.linalg.norm(jaw[lm[8]] - neutral[lm[8]]) < 2.5       # chin travel
    assert jaw[lm[62], 1] - jaw[lm[66], 1] > 1.0                          # lips part at the middle
    assert np.linalg.norm(jaw[lm[27]] - neutral[lm[27]]) < 1e-6           # the nose does not move
    smile = posed(rig, mouthSmile_L=1.0) - neutral
    assert 0.4 < np.linalg.norm(smile[lm[54]]) < 0.9 and smile[lm[54], 1] > 0.2  # corner up
    blink = posed(rig, eyeBlink_L=1.0)
    opening = neutral[lm[[43, 44]], 1] - neutral[lm[[47, 46]], 1]
    closed = blink[lm[[43, 44]], 1] - blink[lm[[47, 46]], 1]
    assert (opening > 0.5).all() and (np.abs(closed) < 0.4 * opening).all()
    assert np.abs(blink[lm[[37, 38]]] - neutral[lm[[37, 38]]]).max() < 1e-9  # the right eye stays open


def test_no_tearing_or_flipped_triangles(rig):
    skin = rig.faces[rig.face_material == rig.material_names.index("skin")]

    def normals(v):
        return np.cross(v[skin[:, 1]] - v[skin[:, 0]], v[skin[:, 2]] - v[skin[:, 0]])

    n0 = normals(rig.neutral)
    for k, name in enumerate(rig.shape_names):
        n1 = normals(rig.neutral + rig.shape_deltas[k])
        assert ((n0 * n1).sum(1) > 0).mean() > 0.995, name


def test_shapes_are_distinguishable(rig):
    d = rig.shape_deltas.reshape(rig.num_shapes, -1)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    assert np.linalg.cond(d @ d.T) < 1e4


def test_landmark_semantics(rig):
    p = rig.neutral[rig.landmark_vertices]
    x = p[:, 0]
    assert np.argmin(p[:17, 1]) == 8 and abs(x[8]) < 1e-6                # chin bottom-most, on the midline
    assert np.argmax(p[:, 2]) == 30                                      # nose tip front-most
    assert np.all(np.diff(x[:17]) > 0)                                    # jaw from the subject's right (-x)
    assert (x[17:22] < 0).all() and (x[22:27] > 0).all()
    assert x[36] < x[39] < 0 < x[42] < x[45]                             # eye corners, 36 outer right
    assert (p[[37, 38], 1] > p[[41, 40], 1]).all()                       # upper lid above lower lid
    assert x[48] < 0 < x[54] and (p[49:54, 1] > p[55:60, 1].max()).all()
    np.testing.assert_allclose(p[[61, 62, 63]], p[[67, 66, 65]])          # inner lips meet at rest...
    assert len(set(rig.landmark_vertices[60:68])) == 8                   # ...but are separate vertices
    np.testing.assert_allclose(p * MIRROR, p[[16 - i for i in range(17)] + list(range(26, 16, -1))
                                             + list(range(27, 31)) + list(range(35, 30, -1))
                                             + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
                                             + list(range(54, 47, -1)) + list(range(59, 54, -1))
                                             + [64, 63, 62, 61, 60, 67, 66, 65]], atol=1e-9)


def test_texture_has_features_and_detail(rig):
    tex = rig.texture[0].astype(float)
    assert np.abs(np.diff(tex, axis=1)).mean() > 1.0  # fine detail: gradients everywhere
    uv = rig.uv[rig.uv_faces[:, 0]]
    lm = rig.landmark_vertices
    tri = np.flatnonzero(np.isin(rig.faces[:, 0], lm[[51, 57]]))  # triangles at the lips
    cheek = np.flatnonzero(rig.faces[:, 0] == lm[3])
    px = lambda t: tex[((1 - uv[t, 1]) * 511).astype(int), (uv[t, 0] * 511).astype(int)].mean(0)  # noqa: E731
    lip, skin = px(tri), px(cheek)
    assert lip[0] / lip[1] > skin[0] / skin[1]  # lips redder than skin


def test_deterministic_and_configurable():
    config = DemoHeadConfig(resolution=0.5, texture_size=64)
    a, b = build_demo_head(config), build_demo_head(config)
    assert 2000 < a.num_vertices < 5000 and a.texture.shape == (1, 64, 64, 3)
    for key in ("neutral", "faces", "shape_deltas", "corrective_deltas", "identity_deltas", "uv", "uv_faces",
                "landmark_vertices", "texture"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


@pytest.mark.parametrize("changes, match", [({"resolution": 0.1}, "resolution"),
                                            ({"texture_size": 8}, "texture_size")])
def test_config_guards(changes, match):
    with pytest.raises(ConfigError, match=match):
        build_demo_head(DemoHeadConfig(**changes))
