"""Work beyond one machine: per-item work on Ray Data with an actor pool, results handed back as they finish.

An actor holds what is slow to make (an assistant with its model and tools, a tool set) and serves many
items; the driver writes each result the moment it comes back, into the same resumable outputs the
one-machine paths write (`AnswerLog` for `batch`, the index's one-transaction-per-image writes for
`index`), so a run on Ray resumes like any other: whatever was written is skipped on the next run.
With no address Ray starts a local cluster; an address ("auto", "ray://head:10001", "head:6379") joins
a running one, whose nodes must have the project installed and see the images at the same paths.
Model serving at scale stays with vLLM/SGLang: actors given `--model http://...` call that server
through the remote back end (docs/ray.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from assistant.answer_log import RESULT_KEYS, AnswerLog, BatchSummary, Job, answer_row, write_rows
from tools.errors import BadInputError

INSTALL = "pip install 'ray[data]'"


def init(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to Ray once per process: a local cluster for None/"local", else the cluster at `address`."""
    try:
        import ray
    except ImportError:
        raise BadInputError(f"--ray needs Ray: {INSTALL}") from None
    if ray.is_initialized():
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
    if address in (None, "", "local"):
        ray.init(num_cpus=num_cpus, **quiet)
    else:
        quiet.pop("include_dashboard")
        ray.init(address=address, **quiet)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver draws its own bar, per finished item
    ctx.print_on_execution_start = False


def map_actors(
    payloads: list[str],
    actor: type,
    kwargs: dict,
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
) -> Iterator[str]:
    """`actor(**kwargs)(batch)` over JSON payloads on an actor pool; yields each result as it finishes
    (in the order they finish, not the order given)."""
    if not payloads:
        return
    init(address)
    import ray

    if workers is None:
        cpus = ray.cluster_resources().get("CPU", 2)
        workers = max(1, min(len(payloads), int(cpus // max(cpus_per_worker, 2.0))))
    ds = ray.data.from_items([{"payload": p} for p in payloads], override_num_blocks=len(payloads))
    ds = ds.map_batches(
        actor,
        fn_constructor_kwargs=kwargs,
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
    )
    for row in ds.iter_rows():
        yield row["payload"]


class AnswerActor:
    """One assistant (model, tools, budget) answering batch jobs, as `launch.py batch` does."""

    def __init__(self, model_cfg, assistant_cfg, images_dir, allow_outside: bool = False):
        from assistant.factory import build_assistant

        self.assistant = build_assistant(model_cfg, assistant_cfg)
        self.images_dir = images_dir
        self.allow_outside = allow_outside

    def answer(self, job: Job, image) -> dict:
        conv = self.assistant.conversation()
        try:
            return conv.ask(job.question, [image] if image is not None else []).to_dict()
        finally:
            conv.close()

    def __call__(self, batch: dict) -> dict:
        out = []
        for payload in batch["payload"]:
            job = Job(**json.loads(payload))
            row = answer_row(job, self.images_dir, self.answer, RESULT_KEYS, self.allow_outside)
            out.append(json.dumps(row, ensure_ascii=False, default=str))
        return {"payload": out}


def run_batch_on_ray(
    jobs: list[Job],
    images_dir,
    log: AnswerLog,
    model_cfg,
    assistant_cfg,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    allow_outside: bool = False,
    on_row: Callable[[dict], None] | None = None,
) -> BatchSummary:
    """`run_batch` on Ray: every job not yet in `log` answered by a pool of assistants, each row appended
    (whole, fsynced) as it finishes; the summary is over the whole log, as `run_batch`'s is."""

    todo = [j for j in jobs if j.id not in log.rows]
    summary = BatchSummary(skipped=len(jobs) - len(todo))
    payloads = [
        json.dumps({"id": j.id, "question": j.question, "image": j.image, "error": j.error}) for j in todo
    ]
    kwargs = {
        "model_cfg": model_cfg,
        "assistant_cfg": assistant_cfg,
        "images_dir": str(images_dir) if images_dir is not None else None,
        "allow_outside": allow_outside,
    }
    rows = (json.loads(p) for p in map_actors(payloads, AnswerActor, kwargs, address, workers))
    return write_rows(log, rows, summary, len(jobs), progress, on_row)
