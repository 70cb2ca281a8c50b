"""Articulated 2.5D body of SynthReID made of the 24 DensePose charts (issue 3, "Body and pose").

The body is 14 quadric primitives: tapered elliptic cylinders (torso, upper/lower arms and legs,
each split into a front and a back chart by the angle around its axis), two-chart half-ellipsoids
(the head: right and left charts) and single-chart ellipsoids (hands, feet). Every primitive is
described in its own frame ``(ex, ey, ez)`` whose origin is the top of the primitive; ``ey`` runs
along the primitive (down the limb), ``ez`` is the body's forward direction made orthogonal to
``ey`` and ``ex = ez x ey`` (the person's left for an upright limb).

In that frame a primitive is the quadric ``X^2/a^2 + Z^2/b^2 + alpha Y^2 + beta Y + gamma = 0``
for ``0 <= Y <= L``:

* tapered cylinder of start radii ``(a, b)`` whose radii scale by ``1 + k Y``:
  ``alpha = -k^2, beta = -2k, gamma = -1``;
* ellipsoid of semi-axes ``(a, L/2, b)``: ``alpha = 4/L^2, beta = -4/L, gamma = 0``.

Body coordinates: ``x`` = the person's left, ``y`` = up, ``z`` = the person's front; the ground
is ``y = 0`` and a body is about 1.75 units tall.
"""
from dataclasses import dataclass

import numpy as np

from ...dense.parts import PART_NAMES

__all__ = ["chart", "BodyShape", "Pose", "Primitives", "sample_shape", "sample_pose", "build_body",
           "MODE_FRONT_BACK", "MODE_SINGLE", "MODE_HEAD"]

# How a primitive's surface point gets its chart and (U, V), see render.surface_uv.
MODE_FRONT_BACK = 0  # cylinder: front chart where Z >= 0, back chart elsewhere, U around, V along
MODE_SINGLE = 1      # one chart wrapped around the axis (hands, feet)
MODE_HEAD = 2        # head: right chart where X < 0 (person's right), left chart elsewhere


def chart(name):
    """1-based DensePose chart id of a part name of ``dense.parts.PART_NAMES``."""
    return PART_NAMES.index(name) + 1


@dataclass(frozen=True)
class BodyShape:
    """Per-identity body proportions (multipliers around 1)."""

    height: float = 1.0     # stature (1.75 world units at 1)
    girth: float = 1.0      # torso depth and width
    shoulders: float = 1.0  # shoulder breadth
    limbs: float = 1.0      # arm and leg thickness
    legs: float = 1.0       # leg length (and hip height)
    head: float = 1.0       # head size


@dataclass(frozen=True)
class Pose:
    """One walking pose: gait phase, swing amplitudes and arm abduction (radians)."""

    phase: float = 0.0       # gait phase: the right leg is forward when sin(phase) > 0
    leg_swing: float = 0.3   # hip flexion amplitude
    arm_swing: float = 0.25  # shoulder flexion amplitude (arms swing against the legs)
    abduction: float = 0.08  # arms held away from the body
    lean: float = 0.03       # forward lean of the torso


@dataclass
class Primitives:
    """All primitives of one posed body in world coordinates (arrays over primitives ``K``).

    origin ``[K, 3]``, frame ``[K, 3, 3]`` (rows: ex, ey, ez in world coordinates), inverse squared
    radii ``ia``, ``ib`` ``[K]``, quadric ``alpha``, ``beta``, ``gamma`` ``[K]``, length ``[K]``,
    ``mode`` ``[K]`` (MODE_*), charts ``chart_a``, ``chart_b`` ``[K]`` (front/back or right/left),
    ``a``, ``b`` radii ``[K]`` and ``reach`` ``[K]`` (the largest radius, for bounding boxes).
    """

    origin: np.ndarray
    frame: np.ndarray
    ia: np.ndarray
    ib: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    length: np.ndarray
    mode: np.ndarray
    chart_a: np.ndarray
    chart_b: np.ndarray
    a: np.ndarray
    b: np.ndarray
    reach: np.ndarray


def sample_shape(rng):
    """A random body shape (issue 3: body-shape variation)."""
    return BodyShape(
        height=rng.uniform(0.92, 1.08), girth=rng.uniform(0.85, 1.25), shoulders=rng.uniform(0.9, 1.12),
        limbs=rng.uniform(0.85, 1.2), legs=rng.uniform(0.95, 1.05), head=rng.uniform(0.93, 1.08),
    )


def sample_pose(rng, stride=None, spread=1.0):
    """A random walking pose; ``stride`` (0..1) fixes the swing amplitude, else it is random.

    ``spread`` scales the pose variation (swing amplitude above the minimum, lean): 0 = everyone stands
    still, 1 = the default walk; the draws are the same whatever its value.
    """
    stride = rng.uniform(0.15, 1.0) if stride is None else stride
    leg = 0.08 + 0.42 * min(1.0, stride * spread)
    return Pose(phase=rng.uniform(0, 2 * np.pi), leg_swing=leg, arm_swing=leg * rng.uniform(0.6, 1.0),
                abduction=rng.uniform(0.05, 0.16), lean=rng.uniform(0.0, 0.06) * spread)


def _rot_y(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _frames(axis, forward):
    """Orthonormal frames (rows ex, ey, ez) with ey = axis and ez = forward made orthogonal to it."""
    ey = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    ez = forward - np.sum(forward * ey, axis=-1, keepdims=True) * ey
    ez = ez / np.linalg.norm(ez, axis=-1, keepdims=True)
    ex = np.cross(ez, ey)
    return np.stack([ex, ey, ez], axis=-2)


def _limb_dir(flex, abduct, side):
    """Unit direction of a limb hanging down, swung forward by ``flex`` and out by ``abduct``."""
    ca = np.cos(abduct)
    return np.array([side * np.sin(abduct), -np.cos(flex) * ca, np.sin(flex) * ca])


def build_body(shape, pose, yaw):
    """Pose the body and turn it by ``yaw`` (0 = facing the camera, which looks along -z).

    Returns:
        Primitives in world units (ground at y = 0, person centred on x = z = 0).
    """
    h = 1.75 * shape.height
    g, lb = shape.girth, shape.limbs
    up, down, fwd = np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    s = np.sin(pose.phase)

    # legs: hip flexion (+ = forward), the knee bends more when the leg is behind
    hip_y = 0.535 * h * shape.legs
    hip_x = 0.052 * h * g
    upper_leg, lower_leg = 0.245 * h * shape.legs, 0.25 * h * shape.legs
    # shoulders and arms swing opposite to the legs; elbows bend a little, more when forward
    neck_y = 0.835 * h
    sh_x, sh_y = 0.108 * h * g * shape.shoulders, 0.805 * h
    upper_arm, lower_arm = 0.175 * h, 0.155 * h

    names, origins, axes, lengths, rad_a, rad_b, taper, modes, ca, cb = ([] for _ in range(10))

    def cyl(name_a, name_b, top, direction, length, ra, rb, end_scale):
        names.append(name_a)
        origins.append(top)
        axes.append(direction)
        lengths.append(length)
        rad_a.append(ra)
        rad_b.append(rb)
        taper.append((end_scale - 1.0) / length)
        modes.append(MODE_FRONT_BACK)
        ca.append(chart(name_a))
        cb.append(chart(name_b))

    def ell(name_a, name_b, centre, direction, ra, half_len, rb, mode):
        names.append(name_a)
        d = direction / np.linalg.norm(direction)
        origins.append(centre - half_len * d)
        axes.append(d)
        lengths.append(2 * half_len)
        rad_a.append(ra)
        rad_b.append(rb)
        taper.append(None)
        modes.append(mode)
        ca.append(chart(name_a))
        cb.append(chart(name_b))

    lean_dir = np.array([0.0, -np.cos(pose.lean), -np.sin(pose.lean)])  # top leans forward
    torso_top = np.array([0.0, neck_y + 0.012 * h, 0.0])
    torso_len = torso_top[1] - (hip_y - 0.035 * h)
    cyl("torso front", "torso back", torso_top, lean_dir, torso_len, 0.125 * h * g * shape.shoulders,
        0.07 * h * g, 0.83 / shape.shoulders)

    feet_bottom = []
    for side, sname in ((1.0, "left"), (-1.0, "right")):
        flex = pose.leg_swing * s * (-side)  # right leg forward when sin(phase) > 0
        knee_bend = 0.06 + 1.1 * max(0.0, -flex) + 0.25 * pose.leg_swing * max(0.0, np.cos(pose.phase) * side)
        hip = np.array([side * hip_x, hip_y, 0.0])
        d1 = _limb_dir(flex, 0.02, side)
        knee = hip + upper_leg * d1
        d2 = _limb_dir(flex - knee_bend, 0.0, side)
        ankle = knee + lower_leg * d2
        r_thigh = 0.05 * h * lb
        cyl(f"upper leg {sname} front", f"upper leg {sname} back", hip - 0.03 * h * d1,
            d1, upper_leg + 0.045 * h, r_thigh, r_thigh * 1.02, 0.72)
        r_calf = 0.037 * h * lb
        cyl(f"lower leg {sname} front", f"lower leg {sname} back", knee - 0.012 * h * d2,
            d2, lower_leg + 0.02 * h, r_calf, r_calf * 1.05, 0.62)
        foot_c = ankle + np.array([0.0, -0.018 * h, 0.035 * h])
        ell(f"{sname} foot", f"{sname} foot", foot_c, down, 0.027 * h, 0.024 * h, 0.068 * h, MODE_SINGLE)
        feet_bottom.append(foot_c[1] - 0.024 * h)

        aflex = -pose.arm_swing * s * (-side)
        shoulder = np.array([side * sh_x, sh_y, 0.0])
        a1 = _limb_dir(aflex, pose.abduction, side)
        elbow = shoulder + upper_arm * a1
        a2 = _limb_dir(aflex + 0.12 + 0.6 * max(0.0, aflex), pose.abduction * 0.5, side)
        wrist = elbow + lower_arm * a2
        r_arm = 0.03 * h * lb
        cyl(f"upper arm {sname} front", f"upper arm {sname} back", shoulder - 0.02 * h * a1,
            a1, upper_arm + 0.03 * h, r_arm, r_arm, 0.85)
        r_fore = 0.025 * h * lb
        cyl(f"lower arm {sname} front", f"lower arm {sname} back", elbow - 0.01 * h * a2,
            a2, lower_arm + 0.01 * h, r_fore, r_fore, 0.8)
        ell(f"{sname} hand", f"{sname} hand", wrist + 0.04 * h * a2, a2, 0.02 * h, 0.045 * h, 0.028 * h,
            MODE_SINGLE)

    hs = shape.head
    head_c = np.array([0.0, neck_y + 0.068 * h * hs, 0.004 * h])
    ell("head right", "head left", head_c, down, 0.052 * h * hs, 0.072 * h * hs, 0.06 * h * hs, MODE_HEAD)

    origins = np.array(origins)
    origins[:, 1] -= min(feet_bottom)  # the lower foot stands on the ground
    axes = np.array(axes)
    frames = _frames(axes, np.broadcast_to(fwd, axes.shape))
    # turn the body: world = Ry(yaw) body; frames hold world-space axes as rows
    rot = _rot_y(yaw)
    origins = origins @ rot.T
    frames = frames @ rot.T
    lengths = np.array(lengths)
    a, b = np.array(rad_a), np.array(rad_b)
    is_cyl = np.array([t is not None for t in taper])
    k = np.array([t if t is not None else 0.0 for t in taper])
    alpha = np.where(is_cyl, -k * k, 4.0 / lengths ** 2)
    beta = np.where(is_cyl, -2.0 * k, -4.0 / lengths)
    gamma = np.where(is_cyl, -1.0, 0.0)
    reach = np.maximum(a, b) * np.where(is_cyl, np.maximum(1.0, 1.0 + k * lengths), 1.0)
    return Primitives(
        origin=origins, frame=frames, ia=1.0 / a ** 2, ib=1.0 / b ** 2, alpha=alpha, beta=beta, gamma=gamma,
        length=lengths, mode=np.array(modes), chart_a=np.array(ca), chart_b=np.array(cb), a=a, b=b, reach=reach,
    )
