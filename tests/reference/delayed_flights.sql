-- delayed_flights.sql - reference answer of the DelayedFlights job, in
-- SQLite, to cross-check delayed_flights.awk. Reads the CSV on stdin:
--   sqlite3 :memory: '.read tests/reference/delayed_flights.sql' < f.csv
-- Prints the same lines as the awk script, in carrier-code order:
--   Delays for carrier AA -> 28.71 average mins - 38739 delayed flights
-- Only rows whose ArrDelay is an integer > 0 count; a header line, if
-- any, is imported as a row like the others and drops out for the same
-- reason as the NA values (its ArrDelay is text).

CREATE TABLE flights (
    Year INTEGER, Month INTEGER, DayofMonth INTEGER, DayOfWeek INTEGER,
    DepTime INTEGER, CRSDepTime INTEGER, ArrTime INTEGER,
    CRSArrTime INTEGER, UniqueCarrier TEXT, FlightNum INTEGER,
    TailNum TEXT, ActualElapsedTime INTEGER, CRSElapsedTime INTEGER,
    AirTime INTEGER, ArrDelay INTEGER, DepDelay INTEGER, Origin TEXT,
    Dest TEXT, Distance INTEGER, TaxiIn INTEGER, TaxiOut INTEGER,
    Cancelled INTEGER, CancellationCode TEXT, Diverted INTEGER,
    CarrierDelay INTEGER, WeatherDelay INTEGER, NASDelay INTEGER,
    SecurityDelay INTEGER, LateAircraftDelay INTEGER
);

.mode csv
.import /dev/stdin flights
.mode list
.headers off

-- The average is printed the way C's printf("%.2f", s / n) prints the
-- double s / n, i.e. like awk, but without SQLite's own printf (which
-- rounds some values differently). Exact integer arithmetic gives the
-- rounded cents, except when s / n lies exactly half-way between two
-- cents (200 s / n an odd integer). Then the double nearest to s / n is
-- either just above or just below that tie, or on it, and printf rounds
-- accordingly (to even when on it). The sign of d * n - s, for the double
-- d = s / n, says which: it is computed exactly by splitting d into two
-- halves of 26 bits (Veltkamp), so that hi * n and lo * n are exact for
-- n < 2^26, and hi * n - s is exact because both are close (Sterbenz).
WITH agg AS (
    SELECT UniqueCarrier AS c, count(*) AS n, sum(ArrDelay) AS s
    FROM flights
    WHERE typeof(ArrDelay) = 'integer' AND ArrDelay > 0
    GROUP BY UniqueCarrier
), q AS (
    SELECT c, n, s, (200 * s) / n AS q2, (200 * s) % n AS r2,
           (s * 1.0 / n) * 134217729.0 AS t, s * 1.0 / n AS d
    FROM agg
), split AS (
    SELECT c, n, s, q2, r2, d, t - (t - d) AS hi FROM q
), res AS (
    SELECT c, n, q2, r2, (hi * n - s) + (d - hi) * n AS e FROM split
), cents AS (
    SELECT c, n,
           CASE
               WHEN r2 <> 0 OR q2 % 2 = 0 THEN (q2 + 1) / 2
               WHEN e > 0 THEN (q2 + 1) / 2
               WHEN e < 0 THEN (q2 - 1) / 2
               ELSE (q2 - 1) / 2 + ((q2 - 1) / 2) % 2
           END AS ct
    FROM res
)
SELECT printf('Delays for carrier %s -> %d.%02d average mins - %d delayed '
              || 'flights', c, ct / 100, ct % 100, n)
FROM cents
ORDER BY c;
