"""Tests for edge_ssl.tracing: what TensorFlow traces in edge_ssl is traced as written, and nothing it calls is
converted by AutoGraph; a step traced so computes exactly what the converted step does; a Python branch on a tensor
fails loudly; Keras still reads a marked `call`'s arguments.
"""

import contextlib
import inspect
from unittest import mock

import numpy as np
import tensorflow as tf

# AutoGraph's converter, where each conversion can be seen: there is no public hook for it.
from tensorflow.python.autograph.impl import api as autograph_api

from edge_ssl import tracing
from edge_ssl.configs import cross_and_learn_tiny
from edge_ssl.data import augment
from edge_ssl.keras import keras
from edge_ssl.methods import cross_and_learn
from edge_ssl.models import student as student_lib
from edge_ssl.train import loop


@contextlib.contextmanager
def _conversions():
    """Yields the list, filled as AutoGraph converts, of the `module.qualname` of each function it converts."""
    converted = []
    convert = autograph_api._convert_actual  # pylint: disable=protected-access

    def record(entity, program_ctx):
        converted.append(
            f"{getattr(entity, '__module__', '?')}.{getattr(entity, '__qualname__', '?')}"
        )
        return convert(entity, program_ctx)

    with mock.patch.object(autograph_api, "_convert_actual", record):
        yield converted


def _double_or_negate(x):
    """A branch on a value known while tracing, as edge_ssl's graph code writes them."""
    return 2.0 * x if x.shape[0] == 2 else -x


def _twice_doubled(x):
    return _double_or_negate(_double_or_negate(x))


def _sign(x):
    """A Python `if` on a tensor's value: only AutoGraph turns it into graph control flow."""
    if tf.reduce_sum(x) > 0:
        return x
    return -x


class _Scale(keras.layers.Layer):

    @tracing.as_written
    def call(self, x):
        return 3.0 * x


class _Dropped(keras.layers.Layer):

    @tracing.as_written
    def call(self, x, training=None):
        return x * (0.0 if training else 1.0)


def _own(converted: list[str]) -> list[str]:
    """The conversions of this file's and edge_ssl's functions."""
    return [name for name in converted if name.startswith((__name__, "edge_ssl"))]


class TracingTest(tf.test.TestCase):

    def test_a_marked_function_and_what_it_calls_are_not_converted(self):
        x = tf.ones([2])
        with _conversions() as converted:
            self.assertAllClose(tracing.function(_twice_doubled)(x), [4.0, 4.0])
        self.assertEqual(_own(converted), [])
        # The same function under a plain tf.function: AutoGraph converts it and what it calls.
        with _conversions() as converted:
            self.assertAllClose(tf.function(_twice_doubled)(x), [4.0, 4.0])
        self.assertIn(f"{__name__}._twice_doubled", converted)
        self.assertIn(f"{__name__}._double_or_negate", converted)

    def test_a_python_branch_on_a_tensor_fails_while_tracing(self):
        with self.assertRaises(tf.errors.OperatorNotAllowedInGraphError):
            tracing.function(_sign)(tf.constant([-1.0]))
        self.assertAllClose(tf.function(_sign)(tf.constant([-1.0])), [1.0])  # AutoGraph's tf.cond

    def test_edge_ssl_autograph_1_leaves_the_conversion_to_tensorflow(self):
        with mock.patch.object(tracing, "_AUTOGRAPH", True):
            self.assertIs(tracing.as_written(_sign), _sign)
            sign = tracing.function(_sign)
        self.assertAllClose(sign(tf.constant([-1.0])), [1.0])

    def test_decorator_forms_and_signatures(self):
        @tracing.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def halve(x):
            return x / 2.0

        self.assertAllClose(halve(tf.constant([4.0])), [2.0])
        self.assertLen(halve.get_concrete_function().structured_input_signature[0], 1)
        marked = tracing.as_written(_double_or_negate)
        self.assertEqual(inspect.signature(marked), inspect.signature(_double_or_negate))
        self.assertEqual(inspect.getfullargspec(marked).args, ["x"])

    def test_keras_reads_the_arguments_of_a_marked_call(self):
        self.assertEqual(inspect.getfullargspec(_Scale.call).args, ["self", "x"])
        x = tf.ones([1, 2])
        # `training` is not passed to a call that does not take it, and is to one that does.
        self.assertAllClose(_Scale()(x, training=True), 3.0 * x)
        self.assertAllClose(_Dropped()(x, training=True), 0.0 * x)
        self.assertAllClose(_Dropped()(x, training=False), x)
        inputs = keras.Input([2])
        model = keras.Model(inputs, _Dropped()(_Scale()(inputs)))
        with _conversions() as converted:
            self.assertAllClose(tf.function(model)(x), 3.0 * x)  # Keras's own tf.function
        self.assertEqual(_own(converted), [])

    def test_a_method_pretrains_and_a_student_exports_without_conversions(self):
        keras.utils.set_random_seed(0)
        method = cross_and_learn.build(cross_and_learn_tiny.get_config())
        clips = np.random.default_rng(0).uniform(size=(2, 8, 32, 32, 3)).astype("float32")
        dataset = augment.with_seeds(tf.data.Dataset.from_tensor_slices({"rgb": clips}), 0)
        with _conversions() as converted:
            batch = next(iter(dataset.map(method.prepare).batch(2)))
            step = loop.make_step_fn(method, tf.distribute.get_strategy(), global_batch_size=2)
            losses = step(batch)
            student = student_lib.build_student("tiny")
            signatures = student.signatures(batch_size=1)
        self.assertEqual(_own(converted), [])
        self.assertTrue(np.isfinite(losses["total"].numpy()))
        self.assertEqual(set(signatures), {"serving_default", "step"})

    def test_a_step_as_written_equals_the_step_autograph_converts(self):
        # Two identical methods: one steps as written, the other with train_step's own code converted by AutoGraph.
        tf.config.experimental.enable_op_determinism()
        methods = []
        for _ in range(2):
            keras.utils.set_random_seed(0)
            methods.append(cross_and_learn.build(cross_and_learn_tiny.get_config()))
        clips = np.random.default_rng(0).uniform(size=(4, 8, 32, 32, 3)).astype("float32")
        dataset = augment.with_seeds(tf.data.Dataset.from_tensor_slices({"rgb": clips}), 0)
        batch = next(iter(dataset.map(methods[0].prepare).batch(4)))
        written, converted_method = methods
        unmarked = type(converted_method).train_step.__wrapped__
        with _conversions() as converted:
            as_written = tracing.function(lambda b: written.train_step(b, 4))(batch)
            autographed = tf.function(lambda b: unmarked(converted_method, b, 4))(batch)
        self.assertIn("edge_ssl.methods.cross_and_learn.CrossAndLearn.train_step", converted)
        for name in as_written:
            self.assertAllEqual(as_written[name], autographed[name], msg=name)
        weights = [[w for m in x.encoders.values() for w in m.weights] for x in methods]
        for a, b in zip(*weights):
            self.assertAllEqual(a, b, msg=a.name)


if __name__ == "__main__":
    tf.test.main()
