"""Tests for edge_ssl.demo.stages: skip when finished with the same inputs, rerun when they change, never count an
interrupted stage as finished, resume a resumable one."""

import os

from absl.testing import absltest

from edge_ssl.demo import stages


class StagesTest(absltest.TestCase):

    def setUp(self):
        super().setUp()
        self.root = self.create_tempdir().full_path
        self.calls = []

    def _pipeline(self):
        return stages.Pipeline(self.root, 1, printer=lambda line: None)

    def _work(self, folder, fail=False):
        self.calls.append(sorted(os.listdir(folder)))
        with open(os.path.join(folder, "part"), "w", encoding="utf-8") as f:
            f.write("half")
        if fail:
            raise KeyboardInterrupt  # what Ctrl-C looks like inside a stage
        return {"value": len(self.calls)}

    def test_a_finished_stage_is_skipped_until_its_inputs_change(self):
        first = self._pipeline().run("a", "A", {"x": 1}, self._work)
        again = self._pipeline().run("a", "A", {"x": 1}, self._work)
        self.assertFalse(first.skipped)
        self.assertTrue(again.skipped)
        self.assertEqual(again.result, {"value": 1})
        changed = self._pipeline().run("a", "A", {"x": 2}, self._work)
        self.assertFalse(changed.skipped)
        self.assertEqual(changed.result, {"value": 2})
        self.assertEqual(self.calls[-1], [stages.STARTED])  # the stale output was removed first

    def test_an_interrupted_stage_is_not_finished_and_starts_over(self):
        with self.assertRaises(KeyboardInterrupt):
            self._pipeline().run("b", "B", {"x": 1}, lambda f: self._work(f, fail=True))
        self.assertFalse(os.path.exists(os.path.join(self.root, "b", stages.MARKER)))
        outcome = self._pipeline().run("b", "B", {"x": 1}, self._work)
        self.assertFalse(outcome.skipped)
        self.assertEqual(self.calls[-1], [stages.STARTED])  # the half-written part was not kept

    def test_a_resumable_stage_keeps_its_interrupted_work_only_for_the_same_inputs(self):
        with self.assertRaises(KeyboardInterrupt):
            self._pipeline().run(
                "c", "C", {"x": 1}, lambda f: self._work(f, fail=True), resumable=True
            )
        self._pipeline().run("c", "C", {"x": 1}, self._work, resumable=True)
        self.assertIn("part", self.calls[-1])  # a training stage resumes from its checkpoints
        with self.assertRaises(KeyboardInterrupt):
            self._pipeline().run(
                "d", "D", {"x": 1}, lambda f: self._work(f, fail=True), resumable=True
            )
        self._pipeline().run("d", "D", {"x": 2}, self._work, resumable=True)
        self.assertNotIn("part", self.calls[-1])  # other inputs: start from an empty folder


if __name__ == "__main__":
    absltest.main()
