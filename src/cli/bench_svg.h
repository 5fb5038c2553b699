/*
 * bench_svg.h - small SVG charts for `sstream bench` (cmd_bench.c):
 * axes with ticks, titles and units, lines with markers, error bars,
 * filled bands, bars and a legend. Coordinates are data values; an axis
 * may be logarithmic (base 2 or 10). Colours are CSS strings.
 */
#ifndef SS_BENCH_SVG_H
#define SS_BENCH_SVG_H

#include <stdio.h>

typedef struct svg_plot {
    FILE *f;
    double x0, x1, y0, y1; /* data range */
    int logx, logy;        /* 0 linear, else the log base */
    double w, h;           /* canvas */
    double l, r, t, b;     /* plot area: left, right, top, bottom (px) */
    int nlegend;
    const char *const *xcat; /* category names: tick i at x = i */
    int ncat;
} svg_plot;

/* Creates path and draws the frame, grid, ticks, title and axis labels.
 * xcat/ncat: categorical x axis (ticks at 0..ncat-1 with these names),
 * or NULL/0. Returns 0, or -1 if the file cannot be written. */
int svg_open(svg_plot *p, const char *path, const char *title,
             const char *subtitle, const char *xlabel, const char *ylabel,
             double x0, double x1, double y0, double y1, int logx, int logy,
             const char *const *xcat, int ncat);

/* A polyline with a marker at each point (marker 0: none, 1: circle,
 * 2: square, 3: triangle); dashed 1 for a dashed line. NaN y skips. */
void svg_line(svg_plot *p, int n, const double *x, const double *y,
              const char *color, int dashed, int marker);

/* Vertical error bars y +- e. */
void svg_errbars(svg_plot *p, int n, const double *x, const double *y,
                 const double *e, const char *color);

/* The area between ylo and yhi over x (filled, no stroke). */
void svg_band(svg_plot *p, int n, const double *x, const double *ylo,
              const double *yhi, const char *fill);

/* A bar from y = bottom of the axis to y at x - w/2 .. x + w/2. */
void svg_bar(svg_plot *p, double x, double w, double y, const char *fill);

/* A vertical reference line with a label at the top. */
void svg_vline(svg_plot *p, double x, const char *label);

/* A free text line under the legend (notes such as "2 cores"). */
void svg_note(svg_plot *p, const char *text);

/* Adds a legend entry (kind 0 line, 1 filled box). */
void svg_legend(svg_plot *p, const char *label, const char *color, int kind);

/* Writes the closing tag and closes the file. Returns 0 or -1. */
int svg_close(svg_plot *p);

#endif
