from pyk3s.agent.kubelet.logs import LogOptions, read_log
from pyk3s.agent.kubelet.status import ContainerState, pod_status

LOG = (b"2026-01-01T00:00:00.000000001Z stdout F one\n"
       b"2026-01-01T00:00:01.000000000Z stderr F two\n"
       b"2026-01-01T00:00:02.000000000Z stdout P thr\n"
       b"2026-01-01T00:00:02.100000000Z stdout F ee\n")


def test_read_log_options(tmp_path):
    p = tmp_path / "0.log"
    p.write_bytes(LOG)
    assert read_log(p, LogOptions())[0] == b"one\ntwo\nthree\n"
    assert read_log(p, LogOptions(tail_lines=1))[0] == b"ee\n"
    assert read_log(p, LogOptions(limit_bytes=5))[0] == b"one\nt"
    assert read_log(p, LogOptions(since=1767225601.5))[0] == b"three\n"
    assert read_log(p, LogOptions(timestamps=True, tail_lines=2))[0].startswith(b"2026-01-01T00:00:02.000000000Z thr")


def test_pod_status_phases():
    pod = {"spec": {"restartPolicy": "Always"}, "status": {}}
    c = ContainerState("c", "img", state="running", pid=42, ready=True, started=True, started_at="t")
    st = pod_status(pod, [], [c], pod_ip="10.42.0.5", host_ip="192.0.2.2", start_time="t", now="t", network_ready=True)
    assert st["phase"] == "Running" and st["podIP"] == "10.42.0.5"
    assert {x["type"]: x["status"] for x in st["conditions"]}["Ready"] == "True"
    assert st["containerStatuses"][0]["containerID"] == "pyk3s://42"
    done = ContainerState("c", "img", state="terminated", exit_code=0)
    st = pod_status({"spec": {"restartPolicy": "Never"}}, [], [done], pod_ip="", host_ip="h", start_time="t", now="t",
                    network_ready=True)
    assert st["phase"] == "Succeeded"
    waiting = ContainerState("c", "nginx", reason="ErrImageNeverPull")
    st = pod_status(pod, [ContainerState("i", "x", init=True)], [waiting], pod_ip="", host_ip="h", start_time="t",
                    now="t", network_ready=False)
    assert st["phase"] == "Pending" and st["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
