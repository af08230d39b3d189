"""Parameters and FLOPs of every encoder variant, and training throughput of the `small` method configs.

Multiply-adds (GMACs) are counted per example over convolutions and dense layers (edge_ssl.models.complexity); FLOPs
are twice that. Throughput is clips (or poses) per second of
`train_step` on random data, after one warm-up step, on this machine.

Example:
  ./run.sh python benchmarks/methods.py --steps=5
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from tensorflow.python.framework import (  # pylint: disable=g-direct-tensorflow-import
    convert_to_constants,
)

from edge_ssl.configs import (
    cross_and_learn_small,
    cv_mim_small,
    modist_paper,
    modist_small,
    modist_tiny,
    muscles_small,
)
from edge_ssl.data import augment, motion, synthetic
from edge_ssl.methods import cross_and_learn, cv_mim, modist, muscles
from edge_ssl.models import caffenet, complexity, frame_resnet, pose_encoder, video_resnet

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 5, "Timed training steps per method.")
flags.DEFINE_bool(
    "paper", True, "Also count the paper-size variants (slow to build on a small machine)."
)

MODIST_CONFIGS = {"tiny": modist_tiny, "small": modist_small, "paper": modist_paper}


def encoders():
    sizes = ("tiny", "small", "paper") if FLAGS.paper else ("tiny", "small")
    for size in sizes:
        yield f"CaffeNet-BN {size} (RGB, fc6)", caffenet.caffenet_bn(size)
        yield f"CaffeNet-BN {size} (12-ch differences, fc6)", caffenet.caffenet_bn(size, 12, "diff")
    if FLAGS.paper:
        yield "VGG16-BN (RGB, fc6)", caffenet.vgg16_bn()
    for size, frames in (("tiny", 4), ("small", 8), ("paper", 8))[: 3 if FLAGS.paper else 2]:
        yield f"Slow-only ResNet {size} ({frames} frames)", video_resnet.video_resnet(
            size, frames=frames
        )
        # At the width the size's MoDist config builds it (1/8 of the visual pathway for the paper's R50).
        divisor = MODIST_CONFIGS[size].get_config().motion_width_divisor
        flow_frames = 2 * frames if size == "paper" else frames
        yield f"motion pathway {size} ({flow_frames} flow frames, 1/{divisor} width)", video_resnet.motion_resnet(
            size, frames=flow_frames, width_divisor=divisor
        )
    for size in ("tiny", "small", "paper"):
        yield f"CV-MIM pose encoder {size}", pose_encoder.pose_encoder(size)
    for size in ("tiny", "small", "paper"):
        yield f"Muscles frame ResNet {size}", frame_resnet.frame_resnet(size)


def throughput(name, module, config, example_fn) -> tuple[str, float]:
    method = module.build(config)
    source = tf.data.Dataset.from_tensor_slices(example_fn(config.global_batch_size))
    if "flow" in method.input_keys:
        source = source.map(motion.add_flow)
    batch = next(
        iter(augment.with_seeds(source, 0).map(method.prepare).batch(config.global_batch_size))
    )
    step = tf.function(lambda b: method.train_step(b, config.global_batch_size))
    step(batch)
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        step(batch)
    return f"{name} (batch {config.global_batch_size})", FLAGS.steps * config.global_batch_size / (
        time.perf_counter() - start
    )


def main(argv):
    del argv
    print(f"{'encoder':<48} {'params':>12} {'GMACs':>9}")
    for name, model in encoders():
        macs = complexity.multiply_adds(model) / 1e9
        print(f"{name:<48} {model.count_params():>12,} {macs:>9.4f}", flush=True)

    rng = np.random.default_rng(0)
    clips = lambda n: {
        "rgb": rng.uniform(size=(n, 16, 112, 112, 3)).astype("float32")
    }  # noqa: E731
    world = synthetic.get_config("tiny", performances=(32, 1, 1))
    poses = list(synthetic.generate(world, "pretrain"))

    def pose_examples(n):
        keys = ("pose2d", "pose2d_pair", "pose3d", "view")
        return {k: np.stack([poses[i % len(poses)][k] for i in range(n)]) for k in keys}

    def signal_clips(n):
        keys = ("rgb", "moved", "gaze")
        small = synthetic.get_config("small", performances=(2, 1, 1), num_cameras=2)
        examples = list(synthetic.generate(small, "pretrain"))
        out = {k: np.stack([examples[i % len(examples)][k] for i in range(n)]) for k in keys}
        out["rgb"] = out["rgb"].astype("float32") / 255.0
        return out

    rows = [
        throughput(
            "cross_and_learn small", cross_and_learn, cross_and_learn_small.get_config(), clips
        ),
        throughput("modist small", modist, modist_small.get_config(), clips),
        throughput("cv_mim small (poses)", cv_mim, cv_mim_small.get_config(), pose_examples),
        throughput("muscles small", muscles, muscles_small.get_config(), signal_clips),
    ]
    print(f"\n{'training step':<48} {'examples/s':>12}")
    for name, rate in rows:
        print(f"{name:<48} {rate:>12.1f}")


if __name__ == "__main__":
    app.run(main)
