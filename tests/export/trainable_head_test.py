"""Tests for export.trainable_head: a linear head trained inside LiteRT with builtin ops only."""

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from export import trainable_head
from export.runtime import head_trainer

D, C = 6, 4


def _adam_step(w, b, m, v, t, x, onehot, mask, lr, wd):
    """The update written out in NumPy: softmax cross-entropy on the masked classes, L2 on W, Adam."""
    logits = x @ w + b + (1 - mask) * -1e4
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - onehot) * mask / len(x)
    grads = [x.T @ g + wd * w, g.sum(0)]
    loss = -np.sum(onehot * np.log(p + 1e-30)) / len(x) + 0.5 * wd * np.sum(w * w)
    t += 1
    out = []
    for var, mm, vv, grad in zip((w, b), m, v, grads):
        mm[:] = 0.9 * mm + 0.1 * grad
        vv[:] = 0.999 * vv + 0.001 * grad * grad
        corr = np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        out.append(var - lr * corr * mm / (np.sqrt(vv) + 1e-8))
    return out[0], out[1], t, loss


class TrainableHeadTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.content = trainable_head.build(D, C)

    def test_converted_model_holds_builtin_ops_only(self):
        interpreter = litert.Interpreter(model_content=self.content)
        self.assertContainsSubset(set(head_trainer.SIGNATURES), interpreter.get_signature_list())
        for op in interpreter._get_ops_details():  # pylint: disable=protected-access
            self.assertFalse(op["op_name"].startswith("Flex"), op)
            self.assertNotEqual(op["op_name"], "CUSTOM", op)

    def test_train_steps_match_the_numpy_update(self):
        head = head_trainer.HeadTrainer(self.content)
        rng = np.random.default_rng(0)
        w0 = rng.normal(size=(D, 3)).astype(np.float32)
        b0 = rng.normal(size=3).astype(np.float32)
        head.set_weights(w0, b0)
        x = rng.normal(size=(5, D)).astype(np.float32)
        labels = np.array([0, 1, 2, 0, 1])
        onehot = np.zeros((5, C), np.float32)
        onehot[np.arange(5), labels] = 1
        mask = np.array([1, 1, 1, 0], np.float32)
        w, b = np.zeros((D, C)), np.zeros(C)
        w[:, :3], b[:3] = w0, b0
        m, v, t = [np.zeros_like(w), np.zeros_like(b)], [np.zeros_like(w), np.zeros_like(b)], 0
        runner = head._runners["train"]  # pylint: disable=protected-access
        for _ in range(3):
            loss = runner(
                embedding=x,
                label=onehot,
                class_mask=mask,
                learning_rate=np.float32(0.1),
                weight_decay=np.float32(0.01),
            )["loss"]
            w, b, t, expected = _adam_step(w, b, m, v, t, x, onehot, mask, 0.1, 0.01)
            self.assertAllClose(loss, expected, rtol=1e-4)
        got_w, got_b = head.weights()
        self.assertAllClose(got_w, w[:, :3], atol=1e-5)
        self.assertAllClose(got_b, b[:3], atol=1e-5)
        self.assertAllClose(w[:, 3], np.zeros(D))  # the unused class never moves

    def test_fit_separates_separable_classes_and_restarts_from_zero(self):
        head = head_trainer.HeadTrainer(self.content)
        rng = np.random.default_rng(1)
        labels = np.repeat(np.arange(3), 8)
        x = rng.normal(size=(24, D)).astype(np.float32) * 0.3
        x[np.arange(24), labels] += 2.0
        history = head.fit(x, labels, 3, epochs=60, learning_rate=0.05)
        self.assertLess(history[-1], 0.2 * history[0])
        self.assertAllClose(
            history[0], np.log(3), rtol=1e-5
        )  # zero weights: uniform softmax at the start
        self.assertEqual(head.logits(x).shape, (24, 3))
        self.assertEqual(float(np.mean(head.logits(x).argmax(1) == labels)), 1.0)
        again = head.fit(x, labels, 3, epochs=1, learning_rate=0.05)
        self.assertAllClose(again[0], np.log(3), rtol=1e-5)

    def test_bad_requests_are_clear_errors(self):
        head = head_trainer.HeadTrainer(self.content)
        x = np.zeros((4, D), np.float32)
        with self.assertRaisesRegex(head_trainer.HeadError, "holds 2 to 4 classes"):
            head.fit(x, [0, 1, 2, 3], 5)
        with self.assertRaisesRegex(head_trainer.HeadError, r"must be \[N, 6\]"):
            head.fit(np.zeros((4, 3)), [0, 1, 0, 1], 2)
        with self.assertRaisesRegex(head_trainer.HeadError, r"labels must lie in \[0, 2\)"):
            head.fit(x, [0, 1, 2, 1], 2)
        with self.assertRaisesRegex(head_trainer.HeadError, "not a readable TFLite model"):
            head_trainer.HeadTrainer(b"not a model")


if __name__ == "__main__":
    tf.test.main()
