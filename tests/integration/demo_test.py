"""The README's first command, `python -m edge_ssl.cli.demo --quick`, end to end: every stage, the report with its
numbers and plots, and a second run that skips what is finished."""

import json
import os
import re
import subprocess
import sys

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _demo(output_dir: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run(
        [sys.executable, "-m", "edge_ssl.cli.demo", f"--output_dir={output_dir}", "--quick"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1200,
        check=False,
    )


class DemoTest(absltest.TestCase):

    def test_quick_demo_reports_every_section_and_resumes(self):
        out = os.path.join(self.create_tempdir().full_path, "demo")
        first = _demo(out)
        self.assertEqual(first.returncode, 0, first.stdout[-3000:] + first.stderr[-3000:])
        for k in range(1, 14):
            self.assertIn(f"[{k}/13]", first.stdout)
        self.assertRegex(first.stdout, r"tf-keras +2\.21\.0")  # the installed stack comes first
        report_dir = os.path.join(out, "report")
        with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as f:
            report = f.read()
        self.assertIn(
            f"- command: `python -m edge_ssl.cli.demo --output_dir={out} --quick`", report
        )
        for section in (
            "## Results",
            "## Live recognition",
            "## Export parity",
            "## Stages",
            "## Plots",
        ):
            self.assertIn(section, report)
        for row in (
            "random init student",
            "control student",
            "teacher (cv_mim, visual",  # the default teacher: CV-MIM's z_p of the held-out clips' keypoints
            "student fp32 (TFLite)",
            "student int8 (TFLite)",
        ):
            line = next(l for l in report.splitlines() if l.startswith(f"| {row}"))
            self.assertRegex(line, r"\d+\.\d% ± \d+\.\d%.*\d+\.\d% ± \d+\.\d%", line)
        self.assertRegex(report, r"\| int8 \| [\d.e+-]+ \| 0\.\d+ \| \d+\.\d% \|")
        self.assertRegex(report, r"scored \d+\.\d% on the held-out clips")
        with open(os.path.join(report_dir, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
        self.assertEqual(
            set(results["rows"]),
            {
                "random_student",
                "control_student",
                "teacher",
                "student_fp32",
                "student_int8",
            },
        )
        for model, shots in results["rows"].items():
            self.assertEqual(set(shots), {"1shot", "5shot"}, model)
            for mean, ci95 in shots.values():
                self.assertTrue(0.0 <= mean <= 1.0 and 0.0 <= ci95 < 0.5, (model, mean, ci95))
        self.assertGreater(results["seconds"], 0.0)
        # The live stage: a video of held-out clips with its truth, the recognizer's outputs, the scores.
        live_dir = os.path.join(out, "live")
        for name in ("live.mp4", "truth.json", "events.jsonl", "frames.jsonl", "scores.json"):
            self.assertTrue(os.path.isfile(os.path.join(live_dir, name)), name)
        live = results["live"]
        for key in (
            "frame_accuracy",
            "action_frame_accuracy",
            "no_action_frame_accuracy",
            "action_frame_argmax_accuracy",
            "event_recall",
        ):
            self.assertTrue(0.0 <= live[key] <= 1.0, (key, live[key]))
        # Precision is undefined (null) only when the recognizer found no event.
        if live["events"]:
            self.assertTrue(0.0 <= live["event_precision"] <= 1.0, live)
        else:
            self.assertIsNone(live["event_precision"])
        self.assertGreater(live["fps_end_to_end"], 0.0)
        self.assertRegex(report, r"\| frame accuracy \(no action a class\) \| \d+\.\d% \|")
        for plot in (
            "training_curves.png",
            "latency_vs_accuracy.png",
            "embeddings_pca.png",
            "confusion_matrix.png",
            "live_timeline.png",
        ):
            with open(os.path.join(report_dir, plot), "rb") as f:
                self.assertEqual(f.read(4), b"\x89PNG", plot)
            self.assertIn(f"]({plot})", report)

        # An interrupted report stage (no stage.json, a half-written file) runs again; the rest is skipped.
        os.remove(os.path.join(report_dir, "stage.json"))
        with open(os.path.join(report_dir, "report.md"), "w", encoding="utf-8") as f:
            f.write("half")
        second = _demo(out)
        self.assertEqual(second.returncode, 0, second.stderr[-3000:])
        skipped = re.findall(r"\[(\d+)/13\] .*: done earlier \(\d+ s\), skipped", second.stdout)
        self.assertEqual(skipped, [str(k) for k in range(1, 13)])
        self.assertIn("[13/13] report: results table and plots\n", second.stdout)
        with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as f:
            self.assertIn("## Results", f.read())


if __name__ == "__main__":
    absltest.main()
