"""tf.distribute strategies by name: one device, mirrored (GPUs, or N logical CPUs), multi-worker, TPU.

The strategy must exist before TensorFlow runs any op (collectives and logical devices are fixed at start-up), so
binaries call `make_strategy` first thing in `main`.
"""

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def split_cpu(num_replicas: int) -> None:
    """Splits the first CPU into `num_replicas` logical devices (for mirrored runs on a machine without GPUs).

    Raises:
      RuntimeError: TensorFlow's devices are already initialised (call this before any op).
    """
    if num_replicas < 2:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_replicas:
        return  # already split this way (a second strategy in the same process)
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_replicas
        )
    except RuntimeError as e:
        raise RuntimeError(
            f"cannot split the CPU into {num_replicas} replicas after TensorFlow has started; "
            "create the strategy before running any TensorFlow op"
        ) from e


def make_strategy(name: str = "auto", num_cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """A strategy by name.

    Args:
      name: "one_device" (GPU 0, else the CPU); "mirrored" (all local GPUs, else `num_cpu_replicas` logical CPUs);
        "multi_worker" (MultiWorkerMirroredStrategy; needs TF_CONFIG naming the cluster and this task); "tpu"
        (TPUStrategy on the TPU in TPU_NAME or the local one; not testable without a TPU); "auto": multi_worker when
        TF_CONFIG names more than one worker, mirrored with more than one GPU or with `num_cpu_replicas` > 1,
        else one_device.
      num_cpu_replicas: logical CPU replicas for "mirrored" (and "auto") on a machine without GPUs.

    Returns:
      The strategy.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if num_cpu_replicas < 0:
        raise ValueError(f"num_cpu_replicas must be >= 0, got {num_cpu_replicas}")
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
        if len(workers) > 1:
            name = "multi_worker"
        elif len(gpus) > 1 or num_cpu_replicas > 1:
            name = "mirrored"
        else:
            name = "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if gpus:
            return tf.distribute.MirroredStrategy()
        split_cpu(num_cpu_replicas)
        devices = [f"/cpu:{i}" for i in range(max(num_cpu_replicas, 1))]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy multi_worker needs TF_CONFIG (the cluster and this task); see README"
            )
        split_cpu(num_cpu_replicas)
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
