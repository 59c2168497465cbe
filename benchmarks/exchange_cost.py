"""What the keyed exchange costs per record, counted deterministically (issue 5).

``python -m benchmarks.exchange_cost [--records N]`` runs, under
``valgrind --tool=callgrind`` with a simulated 32 KiB L1 / 1 MiB L2 data cache, the
TaskManagers' work of the keyed running sum of ``benchmarks.parallel``
(``from_sequence -> map(x -> (x % 1000, x)) -> key_by -> reduce(sum) -> count -> discard``)
in one process on the LocalExecutor, in three configurations:

- ``p1``: parallelism 1 (no keyed routing);
- ``p2-local``: parallelism 2, every channel in process (routing, no serialisation);
- ``p2-net``: parallelism 2 where the channels between subtasks i != j encode and decode
  every element exactly as a network channel does (``encode_element``/``decode_element``),
  i.e. the half of the records that crosses processes in a 2-TaskManager cluster;

and two kernels on batches of 1,000 such records: ``route`` (a keyed ``RecordWriter`` over
two channels) and ``serde`` (``encode_element`` + ``decode_element`` of a batch).

Figures are per record with start-up subtracted (a run with an N-record job minus one
without it): instructions, L1 data misses, and estimated cycles (instructions + 12 per
L1 miss + 60 per L2 miss). Wall time on a shared VM moves +-40 %; these counts do not, so they are
what decisions about the exchange are based on. ``2 / (p2 cycles / p1 cycles)`` bounds the
speed-up two cores can give before any scheduling, socket or thread overhead.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid

CYCLES_PER_L1_MISS = 12
CYCLES_PER_L2_MISS = 60


def _job(records: int, parallelism: int, loopback: bool) -> None:
    """Run the job on the LocalExecutor (the process valgrind measures)."""
    import strom._executors.local as local
    from benchmarks.parallel import add_running_sum
    from strom._runtime.io.channels import LocalInputChannel
    from strom._runtime.io.network import RemoteInputChannel, encode_element
    from strom.datastream import StreamExecutionEnvironment

    class Loopback(RemoteInputChannel):
        """A network channel's two halves in one: encoded on push, decoded on take."""

        __slots__ = ()

        def push(self, element: object) -> None:
            self.queue.append(encode_element(element))

    pattern = re.compile(r"^(.*)\[(\d+)\] -> (.*)\[(\d+)\]$")

    def channel(capacity: int, name: str) -> LocalInputChannel:
        m = pattern.match(name)
        assert m is not None, name
        crossing = loopback and m.group(2) != m.group(4)
        return Loopback(0, capacity, name) if crossing else LocalInputChannel(capacity, name)

    local.LocalInputChannel = channel  # type: ignore[misc,assignment]
    for n in (1000, records):  # a warm-up job, then the measured one
        if n == 0:
            break
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(parallelism)
        add_running_sum(env, n)
        ex = local.LocalExecutor(env.get_job_graph("exchange cost"), uuid.uuid4().hex, {})
        ex.build()
        local.LocalJobClient(ex).run_in_foreground()


def _kernel(kind: str, batches: int) -> None:
    """Route or (de)serialise ``batches`` batches of 1,000 records."""
    from benchmarks.parallel import key_of, to_pair
    from strom._graph.partitioner import KeyGroupStreamPartitioner
    from strom._runtime.elements import RecordBatch
    from strom._runtime.io.channels import LocalInputChannel
    from strom._runtime.io.network import decode_element, encode_element
    from strom._runtime.io.record_writer import RecordWriter

    src = list(range(1_000_000, 1_001_000))
    chans = [LocalInputChannel(8) for _ in range(2)]
    writer = RecordWriter(list(chans), KeyGroupStreamPartitioner(key_selector=key_of), 1000, 128)
    writer.emit(list(map(to_pair, src)), None)  # fill the route cache
    for _ in range(batches):
        values = list(map(to_pair, src))
        if kind == "route":
            writer.emit(values, None)
            for c in chans:
                c.queue.clear()
        elif kind == "serde":
            decode_element(encode_element(RecordBatch(values, None)))


def _callgrind(args: list[str]) -> tuple[int, int, int]:
    """Instructions, L1 data misses, L2 data misses of ``python -m this_module args``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        cmd = [
            "valgrind", "--tool=callgrind", "--cache-sim=yes", "--LL=1048576,16,64",
            f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.exchange_cost",
            *args,
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    v = [int(x) for x in line.split()[1:]]
                    # Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
                    return v[0], v[4] + v[5], v[7] + v[8]
    raise RuntimeError("no totals in the callgrind output")


def _per_record(args_n: list[str], args_0: list[str], n: int) -> tuple[float, float, float]:
    a, b = _callgrind(args_0), _callgrind(args_n)
    ir, d1, ll = ((y - x) / n for x, y in zip(a, b, strict=True))
    return ir, d1, ir + CYCLES_PER_L1_MISS * d1 + CYCLES_PER_L2_MISS * ll


def main() -> None:
    """Print the per-record costs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--job", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kernel", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        _job(args.job[0], args.job[1], bool(args.job[2]))
        return
    if args.kernel:
        _kernel(args.kernel[0], int(args.kernel[1]))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    n = args.records
    rows: dict[str, tuple[float, float, float]] = {}
    for name, p, loop in (("p1", 1, 0), ("p2-local", 2, 0), ("p2-net", 2, 1)):
        rows[name] = _per_record(
            ["--job", str(n), str(p), str(loop)], ["--job", "0", str(p), str(loop)], n
        )
    for kind in ("route", "serde"):
        base = _per_record(["--kernel", "none", "100"], ["--kernel", "none", "0"], 100_000)
        k = _per_record(["--kernel", kind, "100"], ["--kernel", kind, "0"], 100_000)
        rows[kind] = (k[0] - base[0], k[1] - base[1], k[2] - base[2])
    p1 = rows["p1"][2]
    print(f"{'per record':28s} {'instructions':>12s} {'L1 misses':>10s} {'est. cycles':>12s}"
          f" {'vs p1':>6s}")
    for name, (ir, d1, cyc) in rows.items():
        print(f"{name:28s} {ir:12,.0f} {d1:10.1f} {cyc:12,.0f} {cyc / p1:6.2f}")
    ratio = rows["p2-net"][2] / p1
    print(f"speed-up bound on 2 cores: 2 / {ratio:.2f} = {2 / ratio:.2f}x")


if __name__ == "__main__":
    main()
