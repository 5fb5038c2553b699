/*
 * ss_gen_flights.h - a deterministic synthetic airline on-time dataset.
 *
 * Writes CSV in the schema of the ASA Data Expo 2009 airline data (29
 * columns, header SS_GEN_FLIGHTS_HEADER), for flights of 2005-2008 by the
 * 20 carriers of that period between 40 large US airports. The rows are in
 * date order and the output is a pure function of (rows, seed, header):
 * the same options give the same bytes on every run and every machine.
 *
 * What the data looks like, so that tests and benchmarks can rely on it:
 *  - about 2% of the flights are cancelled (Cancelled=1, a CancellationCode
 *    in A-D) and about 0.2% diverted (Diverted=1); both have NA for
 *    ArrTime, ActualElapsedTime, AirTime, ArrDelay and TaxiIn, cancelled
 *    ones also for DepTime, DepDelay and TaxiOut;
 *  - on every other row ArrDelay = DepDelay + ActualElapsedTime -
 *    CRSElapsedTime and AirTime = ActualElapsedTime - TaxiIn - TaxiOut;
 *  - CarrierDelay..LateAircraftDelay are NA unless ArrDelay >= 15, and
 *    then non-negative integers summing to ArrDelay;
 *  - about 45% of the numeric ArrDelay values are positive, with a long
 *    right tail (up to 900 minutes); the mean delay differs by carrier;
 *  - a row is about 100 bytes long on average.
 */
#ifndef SS_GEN_FLIGHTS_H
#define SS_GEN_FLIGHTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SS_GEN_FLIGHTS_HEADER                                               \
    "Year,Month,DayofMonth,DayOfWeek,DepTime,CRSDepTime,ArrTime,"          \
    "CRSArrTime,UniqueCarrier,FlightNum,TailNum,ActualElapsedTime,"        \
    "CRSElapsedTime,AirTime,ArrDelay,DepDelay,Origin,Dest,Distance,"       \
    "TaxiIn,TaxiOut,Cancelled,CancellationCode,Diverted,CarrierDelay,"     \
    "WeatherDelay,NASDelay,SecurityDelay,LateAircraftDelay"

/* Number of columns, and the 1-based positions of the two columns the
 * DelayedFlights job reads. */
#define SS_GEN_FLIGHTS_NCOLS 29
#define SS_GEN_FLIGHTS_COL_CARRIER 9
#define SS_GEN_FLIGHTS_COL_ARRDELAY 15

/* The longest row the generator can produce, newline included. */
#define SS_GEN_FLIGHTS_MAX_ROW 192

typedef struct ss_gen_flights_opts {
    uint64_t rows;  /* data rows to write (the header is not counted) */
    uint64_t seed;  /* any value; 0 is fine */
    int header;     /* nonzero: write the header line first */
} ss_gen_flights_opts;

/* Receives consecutive chunks of the output. Must return 0, or a negative
 * error code to stop the generation (which then returns that code). The
 * bytes are only valid during the call. */
typedef int (*ss_gen_sink_fn)(void *ctx, const char *data, size_t len);

/*
 * Generates the dataset described by opts and hands it to sink in chunks
 * of at most about 1 MiB, each ending at a line end. Every line, the
 * header included, ends with "\n". The caller keeps ownership of opts and
 * ctx; nothing is retained after the call.
 * Returns 0, SS_EINVAL (opts or sink NULL), SS_ENOMEM, or the first
 * negative value sink returned. *bytes_written (if not NULL) is set to
 * the number of bytes accepted by sink, also on failure.
 */
int ss_gen_flights_emit(const ss_gen_flights_opts *opts, ss_gen_sink_fn sink,
                        void *ctx, uint64_t *bytes_written);

/*
 * Writes the dataset to out (opened for writing by the caller, who keeps
 * it: it is flushed but not closed). Returns 0, SS_EINVAL, SS_ENOMEM, or
 * SS_EIO if a write or the final fflush failed (errno tells why).
 * *bytes_written (if not NULL) is set to the bytes handed to out.
 */
int ss_gen_flights_write(FILE *out, const ss_gen_flights_opts *opts,
                         uint64_t *bytes_written);

#endif
