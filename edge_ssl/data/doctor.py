"""The data doctor: what a video or pose folder holds, what is wrong with it, and whether training can use it.

`diagnose` scans the folder with the same index the `tf.data` pipelines use, so what it reports as readable is
exactly what training will read. A folder is usable when it exists, has class folders, and every class has at least
`min_clips_per_class` readable clips.
"""

from typing import Any

from edge_ssl.data import pose_folder, video_folder
from edge_ssl.data.folder_index import DataFolderError, summarize

MODALITIES = ("video", "pose")


def diagnose(data_dir: str, modality: str, min_clips_per_class: int = 1) -> dict[str, Any]:
    """Scans a data folder and reports on it.

    Args:
      data_dir: the folder, `ROOT/<class>/<clip>`.
      modality: "video" (video files and frame folders) or "pose" (.npy / .npz keypoints).
      min_clips_per_class: readable clips every class needs for the folder to count as usable.

    Returns:
      A JSON-ready dict: `data_dir`, `modality`, `usable` (bool), `problems` (list of sentences, empty when usable),
      `classes` (names), `num_clips` (readable), `clips_per_class` (name -> count), `num_skipped`, `skipped`
      (list of `{path, reason}`), and `stats`: min / median / max of `frames` and, for video, `height`, `width` and
      `fps` (fps over the clips that declare one); a statistic is None when no clip has it.

    Raises:
      ValueError: an unknown modality or a negative `min_clips_per_class`.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if min_clips_per_class < 0:
        raise ValueError(f"min_clips_per_class must be >= 0, got {min_clips_per_class}")
    report: dict[str, Any] = {
        "data_dir": data_dir,
        "modality": modality,
        "usable": False,
        "problems": [],
        "classes": [],
        "num_clips": 0,
        "clips_per_class": {},
        "num_skipped": 0,
        "skipped": [],
        "stats": {},
    }
    index_fn = (
        video_folder.index_video_folder if modality == "video" else pose_folder.index_pose_folder
    )
    try:
        index = index_fn(data_dir)
    except DataFolderError as e:
        report["problems"].append(str(e))
        return report
    counts = index.clips_per_class()
    report.update(
        classes=index.classes,
        num_clips=len(index.clips),
        clips_per_class=counts,
        num_skipped=len(index.skipped),
        skipped=[{"path": path, "reason": reason} for path, reason in index.skipped],
    )
    stats = {"frames": summarize(c.num_frames for c in index.clips)}
    if modality == "video":
        stats["height"] = summarize(c.height for c in index.clips)
        stats["width"] = summarize(c.width for c in index.clips)
        stats["fps"] = summarize(c.fps for c in index.clips if c.fps > 0)
    report["stats"] = stats
    problems = report["problems"]
    if not index.clips:
        problems.append(f"no readable clips in {data_dir} ({len(index.skipped)} entries skipped)")
    for name, n in counts.items():
        if n == 0:
            problems.append(f"class '{name}' has no readable clip")
        elif n < min_clips_per_class:
            problems.append(
                f"class '{name}' has {n} readable clips, fewer than --min_clips_per_class={min_clips_per_class}"
            )
    report["usable"] = not problems
    return report


def _fmt_stat(stat: dict[str, float] | None) -> str:
    if stat is None:
        return "n/a"
    return " / ".join(f"{stat[k]:g}" for k in ("min", "median", "max"))


def format_text(report: dict[str, Any]) -> str:
    """Renders `diagnose`'s report for a terminal.

    Args:
      report: the dict `diagnose` returns.

    Returns:
      Several lines of text, ending with the verdict.
    """
    lines = [f"data doctor: {report['data_dir']} ({report['modality']})"]
    if report["classes"]:
        lines.append(f"classes: {len(report['classes'])}, readable clips: {report['num_clips']}")
        width = max(len(name) for name in report["classes"])
        for name in report["classes"]:
            lines.append(f"  {name:<{width}}  {report['clips_per_class'][name]} clips")
        if report["stats"]:
            lines.append("statistics (min / median / max):")
            for key, stat in report["stats"].items():
                lines.append(f"  {key:<7} {_fmt_stat(stat)}")
    lines.append(f"skipped: {report['num_skipped']}")
    for item in report["skipped"]:
        lines.append(f"  {item['path']}: {item['reason']}")
    for problem in report["problems"]:
        lines.append(f"problem: {problem}")
    lines.append("verdict: usable" if report["usable"] else "verdict: NOT usable")
    return "\n".join(lines)
