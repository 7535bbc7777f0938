"""Skeleton layouts the ST-GCN recogniser knows: HumanML3D's 22-joint SMPL tree and NTU's 25 joints.

A layout fixes the bones (the graph of the spatial graph convolution), the graph centre used by
the spatial partition strategy, and the joints that PYSKL-style pre-normalisation aligns.
"""

from __future__ import annotations

from dataclasses import dataclass

#: SMPL kinematic tree restricted to the 22 body joints HumanML3D keeps (no hands). Joint names:
#: 0 pelvis, 1 l_hip, 2 r_hip, 3 spine1, 4 l_knee, 5 r_knee, 6 spine2, 7 l_ankle, 8 r_ankle,
#: 9 spine3, 10 l_foot, 11 r_foot, 12 neck, 13 l_collar, 14 r_collar, 15 head, 16 l_shoulder,
#: 17 r_shoulder, 18 l_elbow, 19 r_elbow, 20 l_wrist, 21 r_wrist.
SMPL22_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

#: Kinect v2 tree of NTU RGB+D (0-based): 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left
#: shoulder/elbow/wrist/hand, 8-11 right arm, 12-15 left hip/knee/ankle/foot, 16-19 right leg,
#: 20 spine shoulder, 21-22 left hand tip/thumb, 23-24 right hand tip/thumb.
NTU25_PARENTS: tuple[int, ...] = (
    -1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11,
)


@dataclass(frozen=True)
class SkeletonLayout:
    """Joints, bones and reference joints of one skeleton format.

    Attributes:
        name: layout identifier ("humanml3d22", "ntu25").
        parents: parent index per joint, -1 for the root; bones are (joint, parent) pairs.
        center: graph centre of the spatial partition strategy (Yan et al. 2018, Sec. 3.6).
        norm_center: joint whose first-frame position becomes the origin in pre-normalisation.
        norm_zaxis: (bottom, top) joints whose first-frame vector is rotated onto +z.
        norm_xaxis: (a, b) joints whose first-frame vector a - b is rotated onto +x after the
            z alignment; it must point roughly along +x in the data's usual first frame, or that
            second rotation is a near half-turn about an axis set by noise.
    """

    name: str
    parents: tuple[int, ...]
    center: int
    norm_center: int
    norm_zaxis: tuple[int, int]
    norm_xaxis: tuple[int, int]

    def __post_init__(self) -> None:
        v = len(self.parents)
        roots = [j for j, p in enumerate(self.parents) if p < 0]
        if len(roots) != 1:
            raise ValueError(f"SkeletonLayout {self.name!r}: parents must hold exactly one root (-1), got {roots}")
        for j, p in enumerate(self.parents):
            if p >= v or p == j:
                raise ValueError(f"SkeletonLayout {self.name!r}: parent of joint {j} is {p}, not a joint in 0..{v - 1}")
        for field, joints in (
            ("center", (self.center,)),
            ("norm_center", (self.norm_center,)),
            ("norm_zaxis", self.norm_zaxis),
            ("norm_xaxis", self.norm_xaxis),
        ):
            if any(not 0 <= j < v for j in joints):
                raise ValueError(f"SkeletonLayout {self.name!r}: {field}={joints} is outside joints 0..{v - 1}")

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(joint, parent) pairs, one per non-root joint."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)


# The graph centre is the pelvis, the root of the SMPL tree, as in the authors' "humanml" PYSKL
# layout. Pre-normalisation uses the SMPL joints that play the roles of PYSKL's NTU choices: origin
# spine1 (NTU: spine mid), z from pelvis to spine1 (NTU: spine base -> spine mid), x along the
# shoulder line. The shoulder order is left - right, not NTU's right - left: a HumanML3D first
# frame faces +z with the body's left on +x, so left - right already points along +x once the
# spine is on +z, whereas right - left would be anti-parallel to +x and PYSKL's rotation would
# turn each clip half-way round an axis picked by noise. The authors' runs applied the NTU
# indices themselves to SMPL joints (HarProtocol.prenorm = "ntu_indices" reproduces that).
HUMANML3D_22 = SkeletonLayout(
    name="humanml3d22",
    parents=SMPL22_PARENTS,
    center=0,
    norm_center=3,
    norm_zaxis=(0, 3),
    norm_xaxis=(16, 17),
)

# PYSKL's "nturgb+d" layout: centre = spine shoulder; PreNormalize3D defaults.
NTU_25 = SkeletonLayout(
    name="ntu25",
    parents=NTU25_PARENTS,
    center=20,
    norm_center=1,
    norm_zaxis=(0, 1),
    norm_xaxis=(8, 4),
)

LAYOUTS: dict[int, SkeletonLayout] = {HUMANML3D_22.num_joints: HUMANML3D_22, NTU_25.num_joints: NTU_25}


def layout_for_joints(num_joints: int) -> SkeletonLayout:
    """The layout with ``num_joints`` joints.

    Raises:
        ValueError: no layout has that many joints (accepted: 22 HumanML3D/SMPL, 25 NTU).
    """
    try:
        return LAYOUTS[num_joints]
    except KeyError:
        accepted = ", ".join(f"{n} ({lay.name})" for n, lay in LAYOUTS.items())
        raise ValueError(f"no skeleton layout has {num_joints} joints; accepted joint counts: {accepted}") from None
