"""Writes the synthetic world as class folders, so users and outside tools can look at it and train on it.

One split per run: `OUTPUT_DIR/<action>/p<performance>_view<camera>.mp4` (with --modality=pose, `.npy` keypoints
and `OUTPUT_DIR/views.csv`), `OUTPUT_DIR/world.json` with the size, split, seed and settings, and with --preview a
contact sheet of frames per action. The folder appears whole or not at all.

Example:
  python -m edge_ssl.cli.world --size=small --split=heldout --per_class=12 --output_dir=/tmp/world_heldout \
      --preview=/tmp/world_heldout.png
"""

from absl import app, flags, logging

from edge_ssl.data import synthetic, world_folder

FLAGS = flags.FLAGS
flags.DEFINE_enum(
    "size", "small", list(synthetic.SIZES), "World size (frames, resolution, performances)."
)
flags.DEFINE_enum(
    "split", "heldout", list(synthetic.SPLITS), "Split: pretrain/test (seen actions), heldout."
)
flags.DEFINE_string("output_dir", None, "A new or empty folder to write the split into (required).")
flags.DEFINE_enum(
    "modality", "video", list(world_folder.MODALITIES), "Write videos or 2D keypoints."
)
flags.DEFINE_integer(
    "clutter",
    None,
    "Background: 0 flat, 1 a shared pool of rooms (the default world), 2 a room per performance, 3 textures.",
)
flags.DEFINE_integer("per_class", None, "Clips per action (default: every clip of the split).")
flags.DEFINE_integer("seed", 0, "The world's seed.")
flags.DEFINE_string(
    "preview", None, "Also write a PNG contact sheet of frames, one row per action, here."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    overrides = {} if FLAGS.clutter is None else {"clutter": FLAGS.clutter}
    try:
        config = synthetic.get_config(FLAGS.size, **overrides)
        if FLAGS.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {FLAGS.seed}")
        counts = world_folder.write_world(
            config,
            FLAGS.split,
            FLAGS.output_dir,
            modality=FLAGS.modality,
            per_class=FLAGS.per_class,
            seed=FLAGS.seed,
            preview=FLAGS.preview,
        )
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    logging.info(
        "wrote %d clips of %d actions to %s%s",
        sum(counts.values()),
        len(counts),
        FLAGS.output_dir,
        f" and a contact sheet to {FLAGS.preview}" if FLAGS.preview else "",
    )


if __name__ == "__main__":
    flags.mark_flag_as_required("output_dir")  # here, so tests can import this module
    app.run(main)
