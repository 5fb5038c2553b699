#!/bin/sh
# Runs inside a container of the image (test_image.sh), started as root
# with only CAP_SETUID and CAP_SETGID and no network: DelayedFlights in
# enclave mode over loopback, its map worker started as the image's
# deploy files start it (`--user sstream --enclave-user sstream-enclave`),
# the source following /data/in.csv so that the run stays up while the
# worker's and its enclave's /proc/PID/status are read, once rows have
# gone through. Prints "uids WORKER ENCLAVE", "capeff WORKER ENCLAVE",
# "spawner-uid U", then the sink's result. Keys are in /k (made and
# owned on the host: /k/root root's, /k/w sstream's, /k/e
# sstream-enclave's).
set -u
E=/usr/local/share/securestreams/examples/delayed-flights
S=sstream
cd /tmp
$S keyservice --keys /k/root --stage map=$E/map-csv-to-event.lua \
    --stage filter=$E/filter-event.lua --stage reduce=$E/reduce-events.lua \
    --bind tcp://127.0.0.1:5599 2> ks.log &
for k in 1 2 3 4; do
    $S router --from tcp://127.0.0.1:$((5553 + 2 * k)) --to tcp://127.0.0.1:$((5554 + 2 * k)) \
        --name router-$k --keys /k/root 2> r$k.log &
done
KS="--security enclave --keyservice tcp://127.0.0.1:5599"
$S worker $E/map-csv-to-event.lua --from tcp://127.0.0.1:5556 --to tcp://127.0.0.1:5557 \
    --name map-1 --stage map $KS --keys /k/w --enclave-keys /k/e \
    --user sstream --enclave-user sstream-enclave 2> map.log &
MAP=$!
$S worker $E/filter-event.lua --from tcp://127.0.0.1:5558 --to tcp://127.0.0.1:5559 \
    --name filter-1 --stage filter $KS --keys /k/root 2> filter.log &
$S worker $E/reduce-events.lua --from tcp://127.0.0.1:5560 --to tcp://127.0.0.1:5561 \
    --name reduce-1 --stage reduce $KS --keys /k/root 2> reduce.log &
OUTPUT=/tmp/output.log $S sink $E/print-results.lua --from tcp://127.0.0.1:5562 \
    --security enclave --keys /k/root --finals reduce-1 > result.txt 2> sink.log &
SINK=$!
sleep 2
head -n 10001 /data/flights.csv > in.csv
$S source --to tcp://127.0.0.1:5555 --file in.csv --format csv --header \
    --follow --linger-ms 100 --security enclave --keys /k/root --name source 2> source.log &
SRC=$!
# rows have gone through the map worker's enclave once the key service
# released the key and router-2 has seen batches; bounded wait
i=0
while [ $i -lt 300 ] && ! grep -q "released the data key to worker map-1" ks.log; do
    sleep 0.1; i=$((i + 1))
done
sleep 3
field() { sed -n "s/^$2:[[:space:]]*//p" /proc/$1/status | tr -s '\t' ' '; }
kids() { for p in /proc/[0-9]*; do
    [ "$(sed -n 's/^PPid:[[:space:]]*//p' $p/status 2> /dev/null)" = "$1" ] && echo ${p#/proc/}
done; }
SP=$(kids $MAP | head -1)
ENC=$(kids "$SP" | head -1)
echo "pids worker=$MAP spawner=$SP enclave=$ENC"
echo "uids $(field $MAP Uid | cut -d' ' -f1-4 | tr ' ' ,) $(field "$ENC" Uid | cut -d' ' -f1-4 | tr ' ' ,)"
echo "capeff $(field $MAP CapEff) $(field "$ENC" CapEff)"
echo "capprm $(field $MAP CapPrm) $(field "$ENC" CapPrm)"
echo "spawner-uid $(field "$SP" Uid | cut -d' ' -f1)"
echo "nonewprivs $(field $MAP NoNewPrivs) $(field "$ENC" NoNewPrivs)"
# an attacker with the worker's uid (what a compromised worker can do):
# it cannot read the enclave's platform.key, nor become root again
if command -v setpriv > /dev/null; then
    if setpriv --reuid 10001 --regid 10001 --clear-groups cat /k/e/platform.key > /dev/null 2>&1; then
        echo "attack-read-platform-key: read"
    else
        echo "attack-read-platform-key: denied"
    fi
    if setpriv --reuid 10001 --regid 10001 --clear-groups setpriv --reuid 0 true > /dev/null 2>&1; then
        echo "attack-back-to-root: became root"
    else
        echo "attack-back-to-root: denied"
    fi
    # the same command as root reads it: the check above can fail
    setpriv --reuid 10002 --regid 10002 --clear-groups cat /k/e/platform.key > /dev/null 2>&1 &&
        echo "enclave-reads-platform-key: yes"
fi
# the rest of the rows, then the end of the stream
tail -n +10002 /data/flights.csv >> in.csv
sleep 1
kill -TERM $SRC
i=0
while [ $i -lt 600 ] && kill -0 $SINK 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
echo "---"
cat result.txt
for f in map.log sink.log source.log; do echo "== $f"; tail -3 $f; done >&2
