import asyncio
import subprocess
import sys

import pytest

from pyk3s.agent.spawn import CommandTimeout, popen, run_command, wait_pid


async def test_run_command_feeds_input_and_captures_output():
    res = await run_command([sys.executable, "-c", "import sys; d = sys.stdin.read(); print(d.upper()); "
                             "sys.stderr.write('e'); sys.exit(3)"], input=b"abc")
    assert (res.returncode, res.stdout, res.stderr) == (3, b"ABC\n", b"e")


async def test_run_command_without_input_reads_end_of_file():
    res = await run_command([sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"])
    assert res.stdout == b"0\n"


async def test_run_command_kills_what_outlives_its_timeout():
    with pytest.raises(CommandTimeout):
        await run_command(["sleep", "5"], timeout=0.2)


async def test_the_loop_keeps_running_while_a_child_starts_and_runs():
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    proc = await popen([sys.executable, "-c", "import time; time.sleep(0.3); raise SystemExit(7)"],
                       stdout=subprocess.DEVNULL)
    assert await wait_pid(proc) == 7
    assert await wait_pid(proc) == 7  # a second wait answers at once
    ticker.cancel()
    assert ticks >= 10
