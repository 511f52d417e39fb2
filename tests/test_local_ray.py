"""stop_local_ray: a Ray this process started is stopped whole, monitor included; ray_for_run
starts and stops only its own."""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os, time
    import ray
    from ray._private import ray_constants
    from rllib_uas.local_ray import stop_local_ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    assert ray.get(ray.remote(lambda: 7).remote()) == 7
    node = ray._private.worker._global_node
    pids = {kind: [i.process.pid for i in infos] for kind, infos in node.all_processes.items()}
    stop_local_ray()
    stop_local_ray()  # a second call, with Ray already stopped, does nothing

    def running(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
            return f.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 30
    left = {k: [p for p in v if running(p)] for k, v in pids.items()}
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {k: [p for p in v if running(p)] for k, v in left.items()}
    print(json.dumps({"initialized": ray.is_initialized(), "kinds": sorted(pids), "left": left,
                      "monitor": ray_constants.PROCESS_TYPE_MONITOR}))
    """
)


def test_stop_local_ray_stops_every_process_of_the_local_ray():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["initialized"] is False
    assert out["monitor"] in out["kinds"]  # the process whose wait it skips was there to stop
    assert not any(out["left"].values()), out["left"]


RUN_SCRIPT = textwrap.dedent(
    """
    import json
    import ray
    from rllib_uas.local_ray import ray_for_run

    kw = dict(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    seen = {}
    try:
        with ray_for_run(**kw) as own:
            seen["own"] = own
            seen["answer"] = ray.get(ray.remote(lambda: 7).remote())
            raise KeyError("a failing run")
    except KeyError:
        pass
    seen["stopped_after_failure"] = not ray.is_initialized()
    ray.init(address="local", **kw)  # somebody else's Ray in this process: used, not stopped
    with ray_for_run(**kw) as own:
        seen["other_is_own"] = own
    seen["other_still_up"] = ray.is_initialized()
    print(json.dumps(seen))
    """
)


def test_ray_for_run_stops_only_its_own_ray_also_after_a_failure():
    res = subprocess.run([sys.executable, "-c", RUN_SCRIPT], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    seen = json.loads(res.stdout.strip().splitlines()[-1])
    assert seen == {
        "own": True,
        "answer": 7,
        "stopped_after_failure": True,
        "other_is_own": False,
        "other_still_up": True,
    }


def test_an_address_where_no_ray_answers_fails_at_once_with_the_fix():
    """ray.init retries an address where nothing listens for minutes; the check answers at once."""
    import socket
    import time

    import pytest

    from rllib_uas.local_ray import check_address

    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ValueError, match=rf"no Ray cluster answers at {address} .*: start its head there"):
            check_address(address)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ValueError, match="Ray address 'headnode': give the head's host:port"):
        check_address("headnode")
    with socket.socket() as server:  # something listening: the check lets ray.init go on
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_address(f"127.0.0.1:{server.getsockname()[1]}")
    check_address("auto")  # left to ray.init
