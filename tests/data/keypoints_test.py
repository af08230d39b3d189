"""Tests for edge_ssl.data.keypoints: flips are involutions that swap left and right, the CV-MIM subset is right."""

import numpy as np
from absl.testing import absltest

from edge_ssl.data import keypoints


class KeypointsTest(absltest.TestCase):

    def test_flip_permutation_swaps_left_and_right_and_is_an_involution(self):
        perm = keypoints.FLIP_PERMUTATION
        np.testing.assert_array_equal(perm[perm], np.arange(keypoints.NUM_KEYPOINTS))
        self.assertEqual(perm[keypoints.INDEX["left_wrist"]], keypoints.INDEX["right_wrist"])
        self.assertEqual(perm[keypoints.INDEX["nose"]], keypoints.INDEX["nose"])

    def test_limb_flip_permutation(self):
        perm = keypoints.LIMB_FLIP_PERMUTATION
        np.testing.assert_array_equal(perm[perm], np.arange(keypoints.NUM_LIMBS))
        names = keypoints.LIMB_NAMES
        self.assertEqual(names[perm[names.index("left_thigh")]], "right_thigh")

    def test_cv_mim_subset_is_the_13_keypoint_profile(self):
        names = [keypoints.COCO17[i] for i in keypoints.CV_MIM_13]
        self.assertEqual(
            names,
            [
                "nose",
                "left_shoulder",
                "right_shoulder",
                "left_elbow",
                "right_elbow",
                "left_wrist",
                "right_wrist",
                "left_hip",
                "right_hip",
                "left_knee",
                "right_knee",
                "left_ankle",
                "right_ankle",
            ],
        )


if __name__ == "__main__":
    absltest.main()
