"""Repository checks that Bazel cannot make on its own, run by `./run.sh test` before `bazel test //...`.

1. Every `*_test.py` file is the source of a `py_test` target, so no test silently drops out of the suite.
2. tf-keras is imported only in `edge_ssl/keras.py`, and nothing writes `tf.keras` (Keras 3 in TensorFlow 2.21).
3. The device runtime stays free of TensorFlow: nothing in `export/runtime/` imports TensorFlow, tf-keras, tf2onnx,
   `edge_ssl.keras` or a part of `export` outside `export.runtime` (lazily or not); the recognizer
   (`edge_ssl/recognize/`) imports nothing of `export` but `export.runtime`, and the few-shot runner's modules
   (`edge_ssl/fewshot/`) nothing else at module level, but for its TensorFlow heads (modules that import TensorFlow
   or Keras at module level, which the runner imports only when such a head is asked for).
4. What TensorFlow traces in edge_ssl and export is traced as written (edge_ssl/tracing.py): nothing there writes
   `tf.function` but `edge_ssl/tracing.py` (the others write `tracing.function`), and every `call` (a Keras layer's),
   `train_step` and `prepare(self, example, seed)` (a method's, mapped over a tf.data pipeline) is decorated with
   `tracing.as_written`, unless it is abstract.

Usage: python -m tools.lint --test_srcs=FILE, where FILE holds the output of
`bazel query 'labels(srcs, kind(py_test, //...))'`, one label a line.
"""

import argparse
import ast
import pathlib
import sys
from collections.abc import Iterable

# Folders that are not the project's sources: the virtual environment, Bazel's output links, vendored shims.
_SKIP_DIRS = (".venv", "third_party", ".git", "out")
_KERAS_MODULE = pathlib.PurePosixPath("edge_ssl/keras.py")


def project_files(root: pathlib.Path, pattern: str) -> list[pathlib.PurePosixPath]:
    """Files under `root` matching `pattern`, as root-relative POSIX paths, skipping non-project folders."""
    found = []
    for path in root.rglob(pattern):
        rel = path.relative_to(root)
        first = rel.parts[0]
        if first in _SKIP_DIRS or first.startswith("bazel-") or "__pycache__" in rel.parts:
            continue
        found.append(pathlib.PurePosixPath(rel.as_posix()))
    return sorted(found)


def label_to_path(label: str) -> pathlib.PurePosixPath:
    """Maps a source label of the main repository (`//pkg/sub:file.py`) to its path (`pkg/sub/file.py`)."""
    label = label.strip()
    if not label.startswith("//") or ":" not in label:
        raise ValueError(f"not a source label of this repository: {label!r}")
    package, name = label[2:].split(":", 1)
    return pathlib.PurePosixPath(package, name) if package else pathlib.PurePosixPath(name)


def tests_without_target(
    test_files: Iterable[pathlib.PurePosixPath], test_src_labels: Iterable[str]
) -> list[pathlib.PurePosixPath]:
    """The `*_test.py` files that no `py_test` target lists in its `srcs`."""
    covered = {label_to_path(label) for label in test_src_labels if label.strip().startswith("//")}
    return sorted(set(test_files) - covered)


def _is_tensorflow_attribute(node: ast.AST, attr: str) -> bool:
    """Whether `node` is `tf.<attr>` or `tensorflow.<attr>`."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id in ("tf", "tensorflow")
    )


def _keras_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for each tf_keras import and each `tf.keras` / `tensorflow.keras` reference in code."""
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tf_keras":
                    uses.append((node.lineno, "tf_keras"))
                elif alias.name.startswith("tensorflow.keras"):
                    uses.append((node.lineno, "tf.keras"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "tf_keras":
                uses.append((node.lineno, "tf_keras"))
            elif node.module.startswith("tensorflow.keras") or (
                node.module == "tensorflow" and any(a.name == "keras" for a in node.names)
            ):
                uses.append((node.lineno, "tf.keras"))
        elif _is_tensorflow_attribute(node, "keras"):
            uses.append((node.lineno, "tf.keras"))
    return uses


def keras_import_violations(root: pathlib.Path) -> list[str]:
    """`path:line: message` for every tf_keras import outside edge_ssl/keras.py and every use of `tf.keras`."""
    problems = []
    for rel in project_files(root, "*.py"):
        tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=str(rel))
        for line, what in sorted(_keras_uses(tree)):
            if what == "tf_keras" and rel != _KERAS_MODULE:
                problems.append(
                    f"{rel}:{line}: import tf-keras through `from edge_ssl.keras import keras`"
                )
            elif what == "tf.keras":
                problems.append(
                    f"{rel}:{line}: `tf.keras` is Keras 3 in TF 2.21; use `from edge_ssl.keras import keras`"
                )
    return problems


# Imports the device runtime must not make; `export.*` is allowed only as `export.runtime*`.
_TENSORFLOW_MODULES = ("tensorflow", "tf_keras", "tf2onnx", "keras", "edge_ssl.keras")
_RUNTIME = "export/runtime/"
_RUNTIME_USERS = {"edge_ssl/recognize/": "anywhere", "edge_ssl/fewshot/": "module level"}


def _imports(tree: ast.Module, module_level: bool) -> list[tuple[int, str]]:
    """(line, module) of each import: every one, or only those of the module's top level."""
    nodes = tree.body if module_level else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module == "export":
                found += [(node.lineno, f"export.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _is_tensorflow(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _TENSORFLOW_MODULES)


def _outside_runtime(module: str) -> bool:
    return (module == "export" or module.startswith("export.")) and not (
        module == "export.runtime" or module.startswith("export.runtime.")
    )


def runtime_import_violations(root: pathlib.Path) -> list[str]:
    """`path:line: message` for each import that breaks rule 3 of the module docstring."""
    problems = []
    for rel in project_files(root, "*.py"):
        path = str(rel)
        if path.startswith(_RUNTIME):
            tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=path)
            for line, module in _imports(tree, module_level=False):
                if _is_tensorflow(module):
                    problems.append(f"{rel}:{line}: the device runtime must not import {module}")
                elif _outside_runtime(module):
                    problems.append(
                        f"{rel}:{line}: the device runtime imports only export.runtime, not {module}"
                    )
            continue
        for folder, where in _RUNTIME_USERS.items():
            if path.startswith(folder):
                tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=path)
                top = [m for _, m in _imports(tree, module_level=True)]
                if where == "module level" and any(_is_tensorflow(m) for m in top):
                    continue  # a TensorFlow head, imported by the runner only when asked for
                for line, module in _imports(tree, module_level=where == "module level"):
                    if _outside_runtime(module):
                        problems.append(
                            f"{rel}:{line}: {folder} imports of export go through export.runtime "
                            f"({where}), not {module}"
                        )
    return problems


# Rule 4: where it applies, the one module that may write tf.function, and the methods TensorFlow traces.
_TRACED_FOLDERS = ("edge_ssl/", "export/")
_TRACING_MODULE = "edge_ssl/tracing.py"
# Method name -> its arguments when only that form is traced (a few-shot head's `prepare(self, data)` is numpy).
_TRACED_METHODS = {"call": None, "train_step": None, "prepare": ["self", "example", "seed"]}


def _decorator_names(node: ast.FunctionDef) -> set[str]:
    """`tracing.as_written`, `abc.abstractmethod`...: each decorator as written, without its call's arguments."""
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(ast.unparse(target))
    return names


def tracing_violations(root: pathlib.Path) -> list[str]:
    """`path:line: message` for each function that breaks rule 4 of the module docstring."""
    problems = []
    for rel in project_files(root, "*.py"):
        path = str(rel)
        if not path.startswith(_TRACED_FOLDERS) or path == _TRACING_MODULE:
            continue
        tree = ast.parse((root / rel).read_text(encoding="utf-8"), filename=path)
        for node in ast.walk(tree):
            if _is_tensorflow_attribute(node, "function"):
                problems.append(
                    f"{rel}:{node.lineno}: write `tracing.function` (edge_ssl/tracing.py), not tf.function"
                )
            elif isinstance(node, ast.ClassDef):
                for method in node.body:
                    if (
                        not isinstance(method, ast.FunctionDef)
                        or method.name not in _TRACED_METHODS
                    ):
                        continue
                    arguments = _TRACED_METHODS[method.name]
                    if arguments and [a.arg for a in method.args.args] != arguments:
                        continue
                    decorators = _decorator_names(method)
                    if "tracing.as_written" in decorators or decorators & {
                        "abc.abstractmethod",
                        "abstractmethod",
                    }:
                        continue
                    problems.append(
                        f"{rel}:{method.lineno}: {node.name}.{method.name} is traced by TensorFlow; "
                        "decorate it with @tracing.as_written (edge_ssl/tracing.py)"
                    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", default=".", help="repository root")
    parser.add_argument(
        "--test_srcs", required=True, help="file with the srcs labels of every py_test"
    )
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root).resolve()
    labels = pathlib.Path(args.test_srcs).read_text(encoding="utf-8").splitlines()

    problems = [
        f"{path}: no py_test target lists this file; add one to {path.parent}/BUILD"
        for path in tests_without_target(project_files(root, "*_test.py"), labels)
    ]
    problems += keras_import_violations(root)
    problems += runtime_import_violations(root)
    problems += tracing_violations(root)
    for problem in problems:
        print(f"lint: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
