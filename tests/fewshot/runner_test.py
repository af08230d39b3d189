"""Tests for edge_ssl.fewshot.runner: heads, engines, outputs, the cache, episodes and every bad input a user meets."""

import contextlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from edge_ssl.fewshot import runner
from export.runtime import classifier, litert
from tests.fewshot import fixtures


class RunnerTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        base = tf.compat.v1.test.get_temp_dir()
        cls.artifact = os.path.join(base, "artifact")
        fixtures.tiny_student_artifact(cls.artifact)
        cls.train = fixtures.write_video_folder(os.path.join(base, "train"), 4)
        cls.eval = fixtures.write_video_folder(os.path.join(base, "eval"), 2, seed=7)

    def config(self, **kwargs) -> runner.RunConfig:
        defaults = dict(
            model=self.artifact,
            train_dir=self.train,
            output_dir=os.path.join(self.get_temp_dir(), "out"),
            eval_dir=self.eval,
            engine="litert",
            cache_dir=os.path.join(self.get_temp_dir(), "cache"),
            epochs=50,
            learning_rate=0.05,
        )
        defaults.update(kwargs)
        return runner.RunConfig(**defaults)

    def _classifier_predictions(self, path: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
        """(true labels, predictions) of classifier.tflite on every clip of `folder`, read as the runner reads them."""
        from edge_ssl.fewshot import labeled  # pylint: disable=g-import-not-at-top

        model = litert.TFLiteModel(path)
        index = labeled.index_folder(folder, "video")
        labels, predicted = [], []
        for clip in index.clips:
            clip_input = labeled.read_video_inputs(clip, fixtures.FRAMES, fixtures.SIZE, 1, 1)
            predicted.append(
                int(model.run("serving_default", {"clip": clip_input})["logits"].argmax())
            )
            labels.append(clip.label)
        return np.array(labels), np.array(predicted)

    def test_linear_head_writes_every_output_and_its_classifier_gives_the_reported_confusion(self):
        config = self.config(head="linear", shots=3, precision="int8")
        results = runner.run(config)
        out = config.output_dir
        for name in (
            "classifier.tflite",
            "labels.txt",
            "metrics.json",
            "confusion.png",
            "report.md",
        ):
            self.assertTrue(os.path.exists(os.path.join(out, name)), name)
        self.assertFalse(os.path.exists(out + ".partial"))
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        self.assertEqual(metrics["mode"], "eval_dir")
        self.assertEqual(metrics["num_train"], 12)
        self.assertEqual(metrics["num_evaluated"], 8)
        self.assertEqual(metrics["engine_file"], "model_int8.tflite")
        self.assertGreater(metrics["accuracy"], 0.5)  # four colour classes; chance is 0.25
        self.assertEqual(set(metrics["per_class_accuracy"]), set(fixtures.COLOURS))
        with open(os.path.join(out, "labels.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read().split(), results.classes)
        with open(os.path.join(out, "classifier.tflite"), "rb") as f:
            content = f.read()
        self.assertEqual(classifier.read_labels(content), results.classes)
        info = classifier.read_info(content)
        # The fixtures' clips are 10 fps: the recognizer resamples a camera to the rate the head was fitted at.
        self.assertEqual((info["frame_rate"], metrics["classifier"]["frame_rate"]), (10.0, 10.0))
        self.assertEqual((info["precision"], info["backbone"]), ("int8", "artifact"))
        self.assertEqual(info["artifact_dir"], os.path.abspath(self.artifact))
        self.assertEqual(info["input"]["frame"], [fixtures.SIZE, fixtures.SIZE, 3])
        # How much moves in the training windows, for the recognizer's motion gate: one window per training clip.
        self.assertEqual(info["movement"], metrics["movement"])
        self.assertEqual(info["movement"]["windows"], 12)
        self.assertBetween(info["movement"]["p5"], 0.0, info["movement"]["median"])
        labels, predicted = self._classifier_predictions(
            os.path.join(out, "classifier.tflite"), self.eval
        )
        confusion = np.zeros((4, 4), int)
        np.add.at(confusion, (labels, predicted), 1)
        self.assertAllEqual(confusion, metrics["confusion_matrix"])
        with open(os.path.join(out, "confusion.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
            report = f.read()
        self.assertIn(f"{metrics['accuracy']:.1%}", report)

    def test_prototype_head_on_onnxruntime_evaluates_the_clips_shots_leave_over(self):
        results = runner.run(
            self.config(head="prototype", engine="onnxruntime", shots=2, eval_dir=None)
        )
        self.assertEqual(results.mode, "held_out")
        self.assertEqual((results.num_train, results.num_evaluated), (8, 8))
        # The clips the head was fitted on: 2 of each class's 4, relative to --train_dir.
        self.assertLen(results.metrics["train_clips"], 8)
        classes = [path.split(os.sep)[0] for path in results.metrics["train_clips"]]
        self.assertEqual(sorted(set(classes)), sorted(os.listdir(self.train)))
        self.assertTrue(all(classes.count(c) == 2 for c in classes))
        for path in results.metrics["train_clips"]:
            self.assertTrue(os.path.isfile(os.path.join(self.train, path)), path)
        self.assertEqual(results.engine_file, "model.onnx")
        self.assertEqual(results.metrics["loss_history"], [])
        self.assertGreater(results.accuracy, 0.5)

    def test_auto_precision_runs_the_form_timed_fastest_and_remembers_it(self):
        artifact = os.path.join(self.get_temp_dir(), "artifact_copy")
        shutil.copytree(self.artifact, artifact)
        # Earlier tests' auto runs may have cached a choice there (the key is the files' sizes and times, which
        # the copy keeps): start without one.
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(artifact, "precision_cache.json"))
        config = dict(model=artifact, head="prototype", eval_dir=None, cache_dir=None)
        first = runner.run(self.config(**config))
        self.assertRegex(first.precision_choice, r"^(int8|fp32): the fastest .* measured now$")
        picked = first.precision_choice.split(":")[0]
        self.assertEqual(first.engine_file, f"model_{picked}.tflite")
        self.assertTrue(os.path.exists(os.path.join(artifact, "precision_cache.json")))
        second = runner.run(self.config(**config, overwrite=True))
        self.assertEqual(second.engine_file, first.engine_file)
        self.assertIn("measured earlier on this machine", second.precision_choice)

    def test_second_run_embeds_nothing_again_unless_a_clip_changed(self):
        train = os.path.join(self.get_temp_dir(), "train_copy")
        shutil.copytree(self.train, train)
        first = runner.run(self.config(train_dir=train, head="prototype", eval_dir=None))
        self.assertEqual(first.metrics["cached_embeddings"], 0)
        second = runner.run(
            self.config(train_dir=train, head="linear", eval_dir=None, overwrite=True)
        )
        self.assertEqual(second.metrics["cached_embeddings"], 16)
        fixtures.write_video(
            os.path.join(train, "red", "clip0.mp4"), (0, 0, 255), np.random.default_rng(9)
        )
        third = runner.run(
            self.config(train_dir=train, head="linear", eval_dir=None, overwrite=True)
        )
        self.assertEqual(third.metrics["cached_embeddings"], 15)

    def test_episodes_give_a_seeded_mean_and_confidence_interval(self):
        config = dict(head="prototype", eval_dir=None, episodes=6, ways=3, shots=1, queries=2)
        first = runner.run(self.config(**config))
        second = runner.run(
            self.config(**config, output_dir=os.path.join(self.get_temp_dir(), "again"))
        )
        self.assertEqual(first.mode, "episodes")
        self.assertLen(first.metrics["episode_accuracies"], 6)
        self.assertEqual(first.metrics["episode_accuracies"], second.metrics["episode_accuracies"])
        mean = np.mean(first.metrics["episode_accuracies"])
        self.assertAllClose(first.metrics["mean_accuracy"], mean)
        self.assertAllClose(
            first.accuracy, mean
        )  # the typed result: the episodes' mean, with its interval
        self.assertEqual(first.ci95, first.metrics["ci95"])
        self.assertIn("over 6 episodes", first.summary())
        if np.std(first.metrics["episode_accuracies"]) > 0:
            self.assertGreater(first.metrics["ci95"], 0.0)
        else:
            self.assertEqual(first.metrics["ci95"], 0.0)
        self.assertEqual(np.sum(first.metrics["confusion_matrix"]), 6 * 3 * 2)

    def test_prototype_episodes_on_embeddings_separate_clusters_and_not_noise(self):
        rng = np.random.default_rng(0)
        labels = np.repeat([3, 7, 11, 12, 20, 31], 20)  # any class ids
        centres = rng.normal(size=(40, 16))
        clustered = centres[labels] + 0.05 * rng.normal(size=(len(labels), 16))
        mean, ci = runner.prototype_episodes(clustered, labels, shots=1, episodes=20)
        self.assertEqual((mean, ci), (1.0, 0.0))
        noise = rng.normal(size=(len(labels), 16))
        mean, ci = runner.prototype_episodes(noise, labels, shots=5, episodes=20)
        self.assertLess(mean, 0.4)  # chance: 1 / 5
        self.assertGreater(ci, 0.0)
        again = runner.prototype_episodes(noise, labels, shots=5, episodes=20)
        self.assertEqual(again, (mean, ci))  # seeded

    def test_a_corrupt_clip_is_a_counted_skip(self):
        train = os.path.join(self.get_temp_dir(), "train_broken")
        shutil.copytree(self.train, train)
        with open(os.path.join(train, "dark", "broken.mp4"), "wb") as f:
            f.write(b"\x00\x01 not a video")
        results = runner.run(self.config(train_dir=train, head="prototype"))
        self.assertEqual(results.num_skipped, 1)
        self.assertEqual(
            results.metrics["skipped"][0]["path"], os.path.join(train, "dark", "broken.mp4")
        )
        self.assertEqual(results.num_train, 16)

    def test_finetune_head_trains_in_tensorflow_and_ships_an_int8_classifier(self):
        config = self.config(head="finetune", engine="auto", shots=2, epochs=3)
        results = runner.run(config)
        self.assertEqual(results.engine, "tf")
        self.assertEqual(results.metrics["classifier"]["source"], "the fine-tuned student (int8)")
        self.assertLen(results.metrics["loss_history"], 3)
        self.assertEqual(
            sorted(os.listdir(config.output_dir)),
            sorted(
                ["classifier.tflite", "labels.txt", "metrics.json", "confusion.png", "report.md"]
            ),
        )
        labels, predicted = self._classifier_predictions(
            os.path.join(config.output_dir, "classifier.tflite"), self.eval
        )
        self.assertAllClose(np.mean(labels == predicted), results.accuracy)

    def _assert_refused(self, pattern: str, **kwargs):
        config = self.config(**kwargs)
        with self.assertRaisesRegex(runner.RunnerError, pattern):
            runner.run(config)
        self.assertFalse(os.path.exists(config.output_dir))
        self.assertFalse(os.path.exists(config.output_dir + ".partial"))

    def test_bad_inputs_are_clear_errors_before_any_work(self):
        no_card = os.path.join(self.get_temp_dir(), "no_card")
        os.makedirs(no_card)
        self._assert_refused("has no model_card.json", model=no_card)
        self._assert_refused("--modality=pose does not match the model", modality="pose")
        self._assert_refused(r"--shots=5 needs 5 readable clips per class.*'bright' has 4", shots=5)
        extra = os.path.join(self.get_temp_dir(), "eval_extra")
        fixtures.write_video_folder(extra, 1, classes=("bright", "green"))
        os.rename(os.path.join(extra, "green"), os.path.join(extra, "jump"))
        self._assert_refused(r"'jump' are in --eval_dir but not in --train_dir", eval_dir=extra)
        single = fixtures.write_video_folder(
            os.path.join(self.get_temp_dir(), "one"), 2, classes=("red",)
        )
        self._assert_refused(
            "has 1 class with readable clips.*at least 2", train_dir=single, eval_dir=None
        )
        self._assert_refused("--engine=tensorrt needs the tensorrt module", engine="tensorrt")
        self._assert_refused("--head=finetune .* use --engine=tf", head="finetune", engine="litert")
        self._assert_refused("--episodes needs --shots", episodes=3, eval_dir=None)
        self._assert_refused("drop --eval_dir", episodes=3, shots=1)
        self._assert_refused(
            r"5-way episodes need 5 classes", episodes=3, shots=1, queries=1, eval_dir=None, ways=5
        )
        self._assert_refused(
            "does not exist", train_dir=os.path.join(self.get_temp_dir(), "missing")
        )
        self._assert_refused("--epochs must be >= 1", epochs=0)
        self._assert_refused("--num_threads must be >= 1", num_threads=0)
        taken = os.path.join(self.get_temp_dir(), "taken")
        os.makedirs(taken)
        with self.assertRaisesRegex(
            runner.RunnerError, "exists; choose a new folder or pass --overwrite"
        ):
            runner.run(self.config(output_dir=taken))
        self.assertEqual(os.listdir(taken), [])

    def test_litert_engine_runs_where_tensorflow_cannot_be_imported(self):
        out = os.path.join(self.get_temp_dir(), "no_tf")
        result = fixtures.run_without_tensorflow(
            "edge_ssl.cli.finetune",
            [
                f"--model={self.artifact}",
                f"--train_dir={self.train}",
                f"--eval_dir={self.eval}",
                f"--output_dir={out}",
                "--engine=litert",
                "--head=linear",
                "--no_cache",
            ],
            timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        self.assertEqual((metrics["engine"], metrics["head"]), ("litert", "linear"))
        self.assertIn("accuracy", result.stdout)


if __name__ == "__main__":
    tf.test.main()
