"""Starting a local multi-worker cluster of `keras-convnets train` processes (127.0.0.1, free ports, one TF_CONFIG
per worker) for tests/test_distribute.py."""

import json
import os
import socket
import subprocess
import sys
import time


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """``workers`` processes running ``keras-convnets train ARGS --strategy multi-worker --out OUT``; each worker
    dumps its final weights to ``weights/worker-<i>.npz`` and logs to ``worker-<i>.log`` (appending on restart)."""

    def __init__(self, root, args, data_dir, workers=2):
        self.root, self.args, self.out = str(root), list(args), os.path.join(str(root), "run")
        self.addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
        self.data_dir = data_dir
        self.processes = [None] * workers

    def command(self):
        # The console script's own module: same as `keras-convnets`, without relying on PATH.
        return [sys.executable, "-m", "keras_convnets.cli", "train", *self.args, "--strategy", "multi-worker",
                "--out", self.out]

    def log(self, index):
        return os.path.join(self.root, f"worker-{index}.log")

    def start(self, index):
        config = {"cluster": {"worker": self.addresses}, "task": {"type": "worker", "index": index}}
        site = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker_site")  # dumps the final weights
        path = os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, TF_CONFIG=json.dumps(config), TFDS_DATA_DIR=self.data_dir, PYTHONUNBUFFERED="1",
                   TF_CPP_MIN_LOG_LEVEL="2", KERAS_CONVNETS_DUMP_WEIGHTS=os.path.join(self.root, "weights"),
                   PYTHONPATH=path)
        env.pop("TF_USE_LEGACY_KERAS", None)  # the command must arrange tf-keras itself
        with open(self.log(index), "a") as log:
            self.processes[index] = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        return self.processes[index]

    def wait(self, timeout):
        """Exit statuses of every worker (None for one still running at the deadline, which is then killed)."""
        deadline = time.time() + timeout
        statuses = []
        for process in self.processes:
            try:
                statuses.append(process.wait(timeout=max(1, deadline - time.time())))
            except subprocess.TimeoutExpired:
                statuses.append(None)
        self.kill_all()
        return statuses

    def kill_all(self):
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    def history(self):
        try:
            with open(os.path.join(self.out, "history.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return []

    def logs(self):
        return "\n".join(f"--- worker {i}\n" + open(self.log(i)).read()[-3000:]
                         for i in range(len(self.processes)) if os.path.exists(self.log(i)))
