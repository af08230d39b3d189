"""The data doctor: checks a video or pose folder before training and says what is wrong with it.

Reports classes, clips per class, frame count / resolution / fps statistics (min / median / max) and every unreadable
file with its reason. Exit status 0 when the folder is usable, 1 otherwise (missing or empty folder, no readable clips,
a class with no readable clip or fewer than --min_clips_per_class).

Example:
  python -m edge_ssl.cli.data_doctor --data_dir=/data/my_actions --modality=video
  python -m edge_ssl.cli.data_doctor --data_dir=/data/my_poses --modality=pose --format=json --min_clips_per_class=5
"""

import json
import sys

from absl import app, flags, logging

from edge_ssl.data import doctor

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "The folder to check: ROOT/<class>/<clip>.", required=True)
flags.DEFINE_enum("modality", "video", list(doctor.MODALITIES), "What the folder holds.")
flags.DEFINE_enum("format", "text", ["text", "json"], "Report format, printed to stdout.")
flags.DEFINE_integer(
    "min_clips_per_class", 1, "Readable clips every class needs for the folder to count as usable."
)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    report = doctor.diagnose(FLAGS.data_dir, FLAGS.modality, FLAGS.min_clips_per_class)
    if FLAGS.format == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(doctor.format_text(report))
    sys.stdout.flush()
    if not report["usable"]:
        logging.error("%s is not usable: %s", FLAGS.data_dir, "; ".join(report["problems"]))
        return 1
    return 0


if __name__ == "__main__":
    app.run(main)
