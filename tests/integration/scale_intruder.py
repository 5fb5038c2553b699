"""A stranger (or a forged request) on the control socket of `sstream run`
(attack tool of test_scale.sh).

    scale_intruder.py SOCKET MODE [REQUEST]

SOCKET is the run's control socket (the `control=` line of its record in
the state folder). It tries to drive the run's rescaling and prints what
happened, one line per try, on stdout ("MODE answer: ..."):

  request   send the line given as 3rd argument (e.g. "scale map 0",
            garbage) and print the answer
  long      send a line of 4096 'A's and print the answer
  ctrl      send "scale map\\x1b[2J 3" (a control character) and print
            the answer
  silent    connect and send nothing: print the answer the run gives
            when it stops waiting
  forged    all of the above in turn: "scale map 0", "rm -rf / map 2",
            long, ctrl, silent

Run it under another uid (setpriv --reuid) to play a stranger: it then
prints "connect: <errno name>" when the socket's folder or mode keeps it
out, or the answer when the run's own credential check does.
"""
import errno, socket, sys

path, mode = sys.argv[1], sys.argv[2]


def attempt(mode, req=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
    except OSError as e:
        print("%s connect: %s" % (mode, errno.errorcode.get(e.errno, str(e.errno))))
        return
    try:
        if mode == "request":
            s.sendall(req.encode() + b"\n")
        elif mode == "long":
            s.sendall(b"A" * 4096 + b"\n")
        elif mode == "ctrl":
            s.sendall(b"scale map\x1b[2J 3\n")
    except OSError:
        pass  # the run may close before reading it all: its answer counts
    ans = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            ans += b
    except OSError as e:
        ans += ("<%s>" % errno.errorcode.get(e.errno, str(e.errno))).encode()
    s.close()
    print("%s answer: %s" % (mode, ans.decode(errors="replace").strip().replace("\n", " | ")))


if mode == "forged":
    attempt("request", "scale map 0")
    attempt("request", "rm -rf / map 2")
    for m in ("long", "ctrl", "silent"):
        attempt(m)
elif mode in ("request", "long", "ctrl", "silent"):
    attempt(mode, sys.argv[3] if len(sys.argv) > 3 else None)
else:
    sys.exit("unknown mode " + mode)
