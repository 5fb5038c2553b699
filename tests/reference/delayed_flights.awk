# delayed_flights.awk - reference answer of the DelayedFlights job.
#
# Reads an airline on-time CSV (Data Expo 2009 schema: UniqueCarrier is
# column 9, ArrDelay column 15; a first line starting with "Year" is the
# header and skipped). For the rows whose ArrDelay is an integer > 0 (NA
# and early or on-time arrivals left out) it prints, one line per carrier
# in carrier-code order:
#   Delays for carrier AA -> 28.71 average mins - 38739 delayed flights
# Works with mawk, gawk and busybox awk:
#   awk -f tests/reference/delayed_flights.awk flights.csv
BEGIN { FS = "," }

NR == 1 && $1 == "Year" { next }

$15 ~ /^-?[0-9]+$/ && $15 + 0 > 0 {
    count[$9]++
    total[$9] += $15
}

END {
    # insertion sort of the carrier codes (mawk has no asort)
    n = 0
    for (c in count) {
        i = ++n
        while (i > 1 && key[i - 1] > c) {
            key[i] = key[i - 1]
            i--
        }
        key[i] = c
    }
    for (i = 1; i <= n; i++) {
        c = key[i]
        printf "Delays for carrier %s -> %.2f average mins - %d delayed " \
               "flights\n", c, total[c] / count[c], count[c]
    }
}
