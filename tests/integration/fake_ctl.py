"""The attacker's fake supervisor (test_statedir.sh): listens on a unix
socket (argument 1, made world-connectable) and answers every request
with a forged "ok", as if it had rescaled the victim's run; writes each
request it got to the file given as argument 2. Ends after 30 s.

    fake_ctl.py SOCKET LOGFILE
"""
import os, socket, sys, time

path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(4)
s.settimeout(1.0)
end = time.time() + 30
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.settimeout(2.0)
    try:
        req = c.recv(512)
        with open(log, "ab") as f:
            f.write(req)
        c.sendall(b"ok: stage map of the run: 9 workers (forged)\n")
    except OSError:
        pass
    c.close()
