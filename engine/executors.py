"""Where a job's process runs: :class:`LocalExecutor` (a process group on this machine) and
:class:`RayExecutor` (Ray's Job Submission API), behind one small interface (:class:`Executor`):

* ``start(job) -> dict``: launch the job's argv; returns the handle columns to record (``pid``, ``pgid``,
  ``proc_start`` / ``ray_id``);
* ``poll(job) -> None | (exit code, reason)``: None while it runs; once it ended, its exit code (None when
  unknown) and, when it did not end by itself, why (e.g. killed): the job then failed whatever the code;
* ``cancel(job, clean_stop)``: end it and whatever it started;
* ``logs(job) -> str``: its output so far (the end of it), also kept in the job's ``job.log``.

Executors hold no job state of their own (everything is in the job row and folder), so any runner, even
one started later, can poll or cancel a job another runner started. Jobs never see the caller's secrets: a
job's environment is built from an allowlist (:func:`job_env`: :data:`JOB_ENV_NAMES` and
:data:`JOB_ENV_PREFIXES`, what a training needs: paths, locale, thread counts, offline switches, the GPU
choice, the engine's own non-secret ``CLAB_*`` settings), not from the caller's environment minus known
secrets: a ``GITHUB_PAT`` or a ``DATABASE_URL`` with a password in it is simply not passed. Even an allowed
name is dropped when it holds one of :data:`SECRET_MARKERS` (``PASSWORD``, ``TOKEN``...); ``HF_TOKEN`` is
never passed (jobs read models from the local cache).

Platform: the local executor is POSIX (Linux, macOS): process groups, ``os.killpg`` and a ``/bin/sh``
wrapper; process checks use ``psutil``. The Ray executor runs wherever Ray's client does.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from engine.config import REPO_ROOT
from engine.job_store import Job, read_end, tail_text

SECRET_ENV = ("CLAB_API_KEY", "CLAB_DASHBOARD_PASSWORD")
SECRET_MARKERS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "CREDENTIAL", "PRIVATE_KEY")
#: The variables a job gets from its caller's environment (when set), and nothing else: where things are, the
#: locale, thread counts, offline switches and caches (paths, never tokens), the GPU choice, Ray's address and
#: the engine's own non-secret settings (``CLAB_WORKSPACE``, ``CLAB_CACHE``, ``CLAB_RAY_*``).
JOB_ENV_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "VIRTUAL_ENV",
        "OMP_NUM_THREADS",
        "OMP_WAIT_POLICY",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "TOKENIZERS_PARALLELISM",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_HOME",
        "HF_HUB_CACHE",
        "TORCH_HOME",
        "XDG_CACHE_HOME",  # where Hugging Face and others cache models when HF_HOME is not set
        "SENTENCE_TRANSFORMERS_HOME",
        "KERAS_BACKEND",
        "LD_LIBRARY_PATH",
        # TensorFlow's switches by name: a TF_ prefix would also pass Terraform's TF_VAR_* (often credentials)
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_ENABLE_ONEDNN_OPTS",
        "TF_FORCE_GPU_ALLOW_GROWTH",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "TF_USE_LEGACY_KERAS",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "RAY_ADDRESS",
        "CLAB_WORKSPACE",
        "CLAB_CACHE",
        "CLAB_RAY_CWD",
        "CLAB_RAY_GPUS",
        "CLAB_APPROACHES",  # approaches plugged in by the operator (engine.approaches.registry.PLUGIN_ENV)
        "CLAB_SIGNING_KEY_FILE",  # where the key that signs model pickles is (a path; engine.signing)
        "XDG_CONFIG_HOME",  # the signing key's default folder
    }
)
#: Name prefixes a job gets too: the locale categories (``LC_ALL``, ``LC_CTYPE``...).
JOB_ENV_PREFIXES = ("LC_",)
LOG_BYTES = 256_000  # how much of the end of a log logs() returns

_GPU_CACHE: dict | None = None


def gpu_info(refresh: bool = False) -> dict:
    """Whether a CUDA GPU is usable here, found cheaply (``nvidia-smi`` first, torch only if
    already imported). Returns ``{"cuda": bool, "device": "cuda"|"cpu", "name": str, "detail": str}``.
    """
    global _GPU_CACHE
    if _GPU_CACHE is not None and not refresh:
        return dict(_GPU_CACHE)
    info = {"cuda": False, "device": "cpu", "name": "", "detail": "no NVIDIA driver found (nvidia-smi missing): CPU"}
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        info["detail"] = "CUDA_VISIBLE_DEVICES is empty: CPU"
    elif shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and names:
                info = {
                    "cuda": True,
                    "device": "cuda",
                    "name": names[0],
                    "detail": f"{len(names)} GPU(s): " + "; ".join(names),
                }
            else:
                info["detail"] = "nvidia-smi found no usable GPU: CPU"
        except (OSError, subprocess.SubprocessError) as exc:
            info["detail"] = f"nvidia-smi failed ({exc}): CPU"
    if not info["cuda"] and "torch" in sys.modules:  # already paid for: ask torch too
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                info = {
                    "cuda": True,
                    "device": "cuda",
                    "name": torch.cuda.get_device_name(0),
                    "detail": "torch sees CUDA",
                }
        except Exception:  # noqa: BLE001 - a broken driver means CPU
            pass
    _GPU_CACHE = info
    return dict(info)


def _is_secret(name: str) -> bool:
    upper = name.upper()
    return upper in SECRET_ENV or any(marker in upper for marker in SECRET_MARKERS)


def job_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The part of ``base`` (default: this process's environment) a job may see: the variables named in
    :data:`JOB_ENV_NAMES` or starting with one of :data:`JOB_ENV_PREFIXES`, less any whose name marks a
    secret (:data:`SECRET_ENV`, :data:`SECRET_MARKERS`). Everything else (``GITHUB_PAT``, ``DATABASE_URL``,
    ``AWS_*``, a shell's own settings) stays behind."""
    base = dict(os.environ if base is None else base)
    return {
        k: v for k, v in base.items() if (k in JOB_ENV_NAMES or k.startswith(JOB_ENV_PREFIXES)) and not _is_secret(k)
    }


class Executor:
    """The interface; ``handle`` names the job column that is set once the job was launched."""

    name = ""
    handle = ""

    def __init__(self, root: Path, kill_grace: float = 5.0):
        self.root, self.kill_grace = Path(root), kill_grace

    def gpu_available(self) -> bool:
        raise NotImplementedError

    def start(self, job: Job) -> dict:
        raise NotImplementedError

    def poll(self, job: Job) -> tuple[int | None, str | None] | None:
        raise NotImplementedError

    def cancel(self, job: Job, clean_stop: float = 0.0) -> None:
        raise NotImplementedError

    def logs(self, job: Job) -> str:
        raise NotImplementedError

    def reap(self) -> None:
        """Collect what this process started and has ended (nothing by default)."""

    def _job_vars(self, job: Job) -> dict[str, str]:
        """What every job is told: where to write progress, its workspace, id and folder."""
        return {
            "CLAB_PROGRESS_FILE": str(job.progress_path),
            "CLAB_WORKSPACE": str(self.root),
            "CLAB_JOB_ID": str(job.id),
            "CLAB_JOB_DIR": str(job.folder),
            "PYTHONUNBUFFERED": "1",
            **{k: v for k in ("CLAB_APPROACHES",) if (v := os.environ.get(k))},  # plug-ins (Ray jobs too)
        }


# -- local: a process group on this machine ----------------------------------------------------
def _start_time(pid: int) -> str | None:
    """Start time of a process (seconds since the epoch, as text), to tell a reused pid apart."""
    try:
        return f"{psutil.Process(pid).create_time():.3f}"
    except psutil.Error:
        return None


def _same_start(recorded: str | None, actual: float) -> bool:
    """Whether ``actual`` is the start time ``recorded``; rows from before start times were kept as
    epoch seconds (clock ticks, no decimal point) cannot be compared and count as the same."""
    if not recorded or "." not in recorded:
        return True
    try:
        return abs(float(recorded) - actual) < 0.5
    except ValueError:
        return True


def _alive(pid: int | None, proc_start: str | None) -> bool:
    """True while the process exists, is not a zombie, and is the one we started."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return False
        return _same_start(proc_start, proc.create_time())
    except psutil.Error:
        return False


def _group_is_ours(pgid: int | None, proc_start: str | None) -> bool:
    """Whether process group ``pgid`` is still the job's: its leader is the recorded process (alive or
    a zombie), or the leader is gone (a pid is not reused while a group of that number has members)."""
    if not pgid:
        return False
    try:
        return _same_start(proc_start, psutil.Process(pgid).create_time())
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    """The live (not zombie) processes of process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a finished child of this process (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def _kill_group(pgid: int, grace: float = 5.0) -> bool:
    """End process group ``pgid``: SIGTERM, then SIGKILL what is left after ``grace`` seconds.
    Returns whether any process of the group was still alive."""
    if not _group_members(pgid):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pgid)
            if not _group_members(pgid):
                return True
            time.sleep(0.05)
    return True


class LocalExecutor(Executor):
    """A subprocess in its own session and process group (``start_new_session=True``): a ``/bin/sh`` wrapper
    (the recorded pid, leader of the group) writes its pid to ``pid`` first and the argv's exit status to
    ``exit_code`` last, so any runner can tell success from failure, and a wrapper that is gone without an
    exit status (killed) from one that finished. Ending a job ends its whole group (SIGTERM, then SIGKILL)."""

    name, handle = "local", "pid"
    WRAPPER = 'echo $$ > "$CLAB_JOB_PID_FILE"; "$@"; rc=$?; echo $rc > "$CLAB_JOB_EXIT_FILE"; exit $rc'

    def __init__(self, root: Path, kill_grace: float = 5.0):
        super().__init__(root, kill_grace)
        self._procs: dict[int, subprocess.Popen] = {}  # the processes this executor started (to reap them)
        self._lock = threading.Lock()

    def gpu_available(self) -> bool:
        return gpu_info()["cuda"]

    def start(self, job: Job) -> dict:
        env = {
            **job_env(),
            **self._job_vars(job),
            "CLAB_JOB_EXIT_FILE": str(job.exit_path),
            "CLAB_JOB_PID_FILE": str(job.folder / "pid"),
        }  # cwd is the repository: `python -m engine` imports its engine (PYTHONPATH passes through when set)
        if not job.gpu and gpu_info()["cuda"]:
            env.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU jobs leave the GPU to the ones that asked
        with open(job.log_path, "ab") as log:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", self.WRAPPER, "clab-job", *job.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT),
                env=env,
                start_new_session=True,
            )
        with self._lock:
            self._procs[job.id] = proc
        return {"pid": proc.pid, "pgid": proc.pid, "proc_start": _start_time(proc.pid)}  # session leader: pgid = pid

    def poll(self, job: Job) -> tuple[int | None, str | None] | None:
        if self._alive(job):
            return None
        try:
            code = int(job.exit_path.read_text().strip())
        except (OSError, ValueError):
            code = None
        ended = self._end_group(job)  # leftovers of a finished job, or the training a killed wrapper left
        if code is not None:
            return code, None
        reason = f"the job's process (pid {job.pid}) ended without an exit status (killed, or the machine restarted)"
        return None, reason + ("; the processes it left running were ended" if ended else "")

    def cancel(self, job: Job, clean_stop: float = 0.0) -> None:
        """Give the job ``clean_stop`` seconds to stop by itself, then end its process group. A job with no
        recorded pid (its runner stopped while launching it) is found through the wrapper's pid file."""
        if not job.pid:
            self._adopt_unrecorded(job)
        if not job.pid:
            return
        deadline = time.monotonic() + clean_stop
        while time.monotonic() < deadline and self._alive(job):
            time.sleep(0.05)
        self._end_group(job)

    def logs(self, job: Job) -> str:
        return read_end(job.log_path, LOG_BYTES)

    def reap(self) -> None:
        with self._lock:
            procs = list(self._procs.items())
        for job_id, proc in procs:
            if proc.poll() is not None:
                with self._lock:
                    self._procs.pop(job_id, None)

    def _adopt_unrecorded(self, job: Job) -> None:
        """Fill in pid, group and start time from the job's pid file, if that process is this job's wrapper."""
        try:
            pid = int((job.folder / "pid").read_text().strip())
            if psutil.Process(pid).environ().get("CLAB_JOB_EXIT_FILE") == str(job.exit_path):
                job.pid, job.pgid, job.proc_start = pid, os.getpgid(pid), _start_time(pid)
        except (OSError, ValueError, psutil.Error):
            pass

    def _alive(self, job: Job) -> bool:
        """Whether the job's recorded process is still running (reaping it if it is this executor's child)."""
        with self._lock:
            proc = self._procs.get(job.id)
        if proc is None:
            return _alive(job.pid, job.proc_start)
        if proc.poll() is None:
            return True
        with self._lock:
            self._procs.pop(job.id, None)
        return False

    def _end_group(self, job: Job) -> bool:
        """End whatever is left of the job's process group, if the group is still the job's."""
        pgid = job.pgid or job.pid
        ended = bool(pgid) and _group_is_ours(pgid, job.proc_start) and _kill_group(pgid, self.kill_grace)
        self._alive(job)  # reap our own child
        return ended


# -- Ray: the Job Submission API ---------------------------------------------------------------
class RayExecutor(Executor):
    """The same argv submitted to a Ray cluster (``RAY_ADDRESS``, e.g. ``http://127.0.0.1:8265``); status and
    logs are read back from Ray, the log mirrored into ``job.log`` after the runner's own ``[jobs]`` lines.
    The job's folder is the same path on the cluster (one machine, or a shared workspace); ``CLAB_RAY_CWD``
    is the repository there, ``CLAB_RAY_GPUS`` says the cluster has GPUs."""

    name, handle = "ray", "ray_id"

    def __init__(self, root: Path, address: str | None, kill_grace: float = 5.0):
        super().__init__(root, kill_grace)
        self.address = address
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.address)
        return self._client

    def gpu_available(self) -> bool:
        return bool(os.environ.get("CLAB_RAY_GPUS"))

    def start(self, job: Job) -> dict:
        env = {**self._job_vars(job), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cwd = os.environ.get("CLAB_RAY_CWD", str(REPO_ROOT))
        gpus = {"entrypoint_num_gpus": 1} if job.gpu and self.gpu_available() else {}
        ray_id = self.client.submit_job(
            entrypoint=f"cd {shlex.quote(cwd)} && {shlex.join(job.argv)}",
            submission_id=f"clab-{job.id}-{int(time.time())}",
            runtime_env={"env_vars": env},
            metadata={"clab_job": str(job.id)},
            **gpus,
        )
        return {"ray_id": ray_id}

    def poll(self, job: Job) -> tuple[int | None, str | None] | None:
        try:
            info = self.client.get_job_info(job.ray_id)
        except Exception as exc:  # noqa: BLE001 - cluster gone: keep it running, say why in the log
            job.append_log(f"[jobs] cannot reach Ray at {self.address}: {exc}")
            return None
        status = str(getattr(info.status, "value", info.status)).upper()
        self.logs(job)
        if status in ("PENDING", "RUNNING"):
            return None
        if status == "SUCCEEDED":
            return 0, None
        reason = "stopped in Ray, not by this job runner" if status == "STOPPED" else (info.message or "")
        return getattr(info, "driver_exit_code", None) or 1, f"Ray reports {status}: {reason}".strip()

    def cancel(self, job: Job, clean_stop: float = 0.0) -> None:
        if not job.ray_id:
            return
        try:
            self.client.stop_job(job.ray_id)
        except Exception as exc:  # noqa: BLE001 - the job may already be gone
            job.append_log(f"[jobs] Ray stop_job failed: {exc}")
        self.logs(job)

    def logs(self, job: Job) -> str:
        """Ray's log of the job, copied into the job's log file after the runner's own header lines."""
        header = [line for line in tail_text(job.log_path, 50).splitlines() if line.startswith("[jobs]")]
        try:
            text = self.client.get_job_logs(job.ray_id) if job.ray_id else ""
        except Exception:  # noqa: BLE001 - no log yet
            text = ""
        if text:
            job.log_path.write_text("\n".join(header) + "\n" + text, encoding="utf-8")
        return read_end(job.log_path, LOG_BYTES)
