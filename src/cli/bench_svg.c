/*
 * bench_svg.c - small SVG charts for `sstream bench` (bench_svg.h).
 */
#include "cli/bench_svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

static double tr(double v, int base)
{
    return base ? log(v) / log((double)base) : v;
}

static double px(const svg_plot *p, double x)
{
    double a = tr(p->x0, p->logx), b = tr(p->x1, p->logx);
    return p->l + (tr(x, p->logx) - a) / (b - a) * (p->w - p->l - p->r);
}

static double py(const svg_plot *p, double y)
{
    double a = tr(p->y0, p->logy), b = tr(p->y1, p->logy);
    return p->h - p->b - (tr(y, p->logy) - a) / (b - a) * (p->h - p->t - p->b);
}

/* A tick label: 1024-multiples as K/M/G on base-2 axes, else %g. */
static void tick_label(char *buf, size_t n, double v, int base)
{
    if (base == 2 && v >= 1024) {
        const char *u[] = {"K", "M", "G"};
        int i = 0;
        v /= 1024;
        while (v >= 1024 && i < 2) {
            v /= 1024;
            i++;
        }
        snprintf(buf, n, "%g%s", v, u[i]);
    } else {
        snprintf(buf, n, "%g", v);
    }
}

/* Linear ticks: a 1/2/5 step giving about 6 ticks. */
static double nice_step(double span)
{
    double raw = span / 6, mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

static void axis_ticks(svg_plot *p, int horizontal)
{
    FILE *f = p->f;
    double lo = horizontal ? p->x0 : p->y0, hi = horizontal ? p->x1 : p->y1;
    int base = horizontal ? p->logx : p->logy;
    double vals[64];
    int n = 0;
    if (horizontal && p->xcat) {
        for (int i = 0; i < p->ncat && n < 64; i++)
            vals[n++] = i;
    } else if (base) {
        double e0 = ceil(tr(lo, base) - 1e-9), e1 = floor(tr(hi, base) + 1e-9);
        int stride = (int)ceil((e1 - e0 + 1) / 10);
        if (stride < 1)
            stride = 1;
        for (double e = e0; e <= e1 && n < 64; e += stride)
            vals[n++] = pow(base, e);
    } else {
        double st = nice_step(hi - lo);
        for (double v = ceil(lo / st) * st; v <= hi + st * 1e-6 && n < 64;
             v += st)
            vals[n++] = fabs(v) < st * 1e-9 ? 0 : v;
    }
    for (int i = 0; i < n; i++) {
        char lab[32];
        if (horizontal && p->xcat)
            snprintf(lab, sizeof lab, "%s", p->xcat[i]);
        else
            tick_label(lab, sizeof lab, vals[i], base);
        if (horizontal) {
            double x = px(p, vals[i]);
            fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' "
                       "stroke='#e4e4e4'/>\n",
                    x, p->t, x, p->h - p->b);
            if (p->xcat)
                fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' "
                           "text-anchor='end' transform='rotate(-35 %.1f "
                           "%.1f)'>",
                        x, p->h - p->b + 14, x, p->h - p->b + 14);
            else
                fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' "
                           "text-anchor='middle'>",
                        x, p->h - p->b + 15);
            esc(f, lab);
            fputs("</text>\n", f);
        } else {
            double y = py(p, vals[i]);
            fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' "
                       "stroke='#e4e4e4'/>\n",
                    p->l, y, p->w - p->r, y);
            fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' "
                       "text-anchor='end'>",
                    p->l - 5, y + 4);
            esc(f, lab);
            fputs("</text>\n", f);
        }
    }
}

/* See bench_svg.h. */
int svg_open(svg_plot *p, const char *path, const char *title,
             const char *subtitle, const char *xlabel, const char *ylabel,
             double x0, double x1, double y0, double y1, int logx, int logy,
             const char *const *xcat, int ncat)
{
    memset(p, 0, sizeof *p);
    p->f = fopen(path, "w");
    if (!p->f)
        return -1;
    if (!(x1 > x0))
        x1 = x0 + 1;
    if (!(y1 > y0))
        y1 = y0 + 1;
    p->x0 = x0, p->x1 = x1, p->y0 = y0, p->y1 = y1;
    p->logx = logx, p->logy = logy;
    p->xcat = xcat, p->ncat = ncat;
    p->w = 760, p->h = 460;
    p->l = 75, p->r = 200, p->t = subtitle ? 62 : 48;
    p->b = xcat ? 95 : 55;
    FILE *f = p->f;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' "
               "height='%.0f' viewBox='0 0 %.0f %.0f' "
               "font-family='Helvetica, Arial, sans-serif'>\n",
            p->w, p->h, p->w, p->h);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='%.1f' y='24' font-size='16' font-weight='bold' "
               "text-anchor='middle'>",
            (p->l + p->w - p->r) / 2);
    esc(f, title);
    fputs("</text>\n", f);
    if (subtitle) {
        fprintf(f, "<text x='%.1f' y='42' font-size='11' fill='#555' "
                   "text-anchor='middle'>",
                (p->l + p->w - p->r) / 2);
        esc(f, subtitle);
        fputs("</text>\n", f);
    }
    axis_ticks(p, 1);
    axis_ticks(p, 0);
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
               "fill='none' stroke='#333'/>\n",
            p->l, p->t, p->w - p->l - p->r, p->h - p->t - p->b);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='13' "
               "text-anchor='middle'>",
            (p->l + p->w - p->r) / 2, p->h - 12);
    esc(f, xlabel);
    fputs("</text>\n", f);
    fprintf(f, "<text x='18' y='%.1f' font-size='13' text-anchor='middle' "
               "transform='rotate(-90 18 %.1f)'>",
            (p->t + p->h - p->b) / 2, (p->t + p->h - p->b) / 2);
    esc(f, ylabel);
    fputs("</text>\n", f);
    return 0;
}

/* See bench_svg.h. */
void svg_line(svg_plot *p, int n, const double *x, const double *y,
              const char *color, int dashed, int marker)
{
    FILE *f = p->f;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2'%s "
               "points='",
            color, dashed ? " stroke-dasharray='6 4'" : "");
    for (int i = 0; i < n; i++)
        if (!isnan(y[i]))
            fprintf(f, "%.1f,%.1f ", px(p, x[i]), py(p, y[i]));
    fputs("'/>\n", f);
    for (int i = 0; marker && i < n; i++) {
        if (isnan(y[i]))
            continue;
        double cx = px(p, x[i]), cy = py(p, y[i]);
        if (marker == 1)
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3.5' fill='%s'/>\n",
                    cx, cy, color);
        else if (marker == 2)
            fprintf(f, "<rect x='%.1f' y='%.1f' width='7' height='7' "
                       "fill='%s'/>\n",
                    cx - 3.5, cy - 3.5, color);
        else
            fprintf(f, "<polygon points='%.1f,%.1f %.1f,%.1f %.1f,%.1f' "
                       "fill='%s'/>\n",
                    cx, cy - 4.5, cx - 4, cy + 3.5, cx + 4, cy + 3.5, color);
    }
}

/* See bench_svg.h. */
void svg_errbars(svg_plot *p, int n, const double *x, const double *y,
                 const double *e, const char *color)
{
    for (int i = 0; i < n; i++) {
        if (isnan(y[i]) || isnan(e[i]))
            continue;
        double lo = y[i] - e[i];
        if (p->logy && lo <= p->y0)
            lo = p->y0;
        double cx = px(p, x[i]), a = py(p, lo), b = py(p, y[i] + e[i]);
        fprintf(p->f, "<path d='M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f "
                      "%.1fH%.1f' stroke='%s' stroke-width='1.5'/>\n",
                cx, a, b, cx - 4, a, cx + 4, cx - 4, b, cx + 4, color);
    }
}

/* See bench_svg.h. */
void svg_band(svg_plot *p, int n, const double *x, const double *ylo,
              const double *yhi, const char *fill)
{
    if (n < 1)
        return;
    fprintf(p->f, "<polygon fill='%s' stroke='none' points='", fill);
    for (int i = 0; i < n; i++)
        fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, yhi[i]));
    for (int i = n - 1; i >= 0; i--)
        fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, ylo[i]));
    fputs("'/>\n", p->f);
}

/* See bench_svg.h. */
void svg_bar(svg_plot *p, double x, double w, double y, const char *fill)
{
    double a = px(p, x - w / 2), b = px(p, x + w / 2);
    double top = py(p, y), bottom = p->h - p->b;
    if (top > bottom)
        top = bottom;
    fprintf(p->f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
                  "fill='%s' stroke='#333' stroke-width='0.5'/>\n",
            a, top, b - a, bottom - top, fill);
}

/* See bench_svg.h. */
void svg_vline(svg_plot *p, double x, const char *label)
{
    double cx = px(p, x);
    fprintf(p->f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' "
                  "stroke='#888' stroke-dasharray='3 3'/>\n",
            cx, p->t, cx, p->h - p->b);
    fprintf(p->f, "<text x='%.1f' y='%.1f' font-size='11' fill='#555'>",
            cx + 4, p->t + 14);
    esc(p->f, label);
    fputs("</text>\n", p->f);
}

/* See bench_svg.h. */
void svg_legend(svg_plot *p, const char *label, const char *color, int kind)
{
    double x = p->w - p->r + 12, y = p->t + 10 + 20 * p->nlegend++;
    if (kind)
        fprintf(p->f, "<rect x='%.1f' y='%.1f' width='18' height='12' "
                      "fill='%s' stroke='#333' stroke-width='0.5'/>\n",
                x, y - 6, color);
    else
        fprintf(p->f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' "
                      "stroke='%s' stroke-width='2'/>\n",
                x, y, x + 18, y, color);
    fprintf(p->f, "<text x='%.1f' y='%.1f' font-size='12'>", x + 24, y + 4);
    esc(p->f, label);
    fputs("</text>\n", p->f);
}

/* See bench_svg.h. */
void svg_note(svg_plot *p, const char *text)
{
    double x = p->w - p->r + 12, y = p->t + 14 + 20 * p->nlegend++;
    fprintf(p->f, "<text x='%.1f' y='%.1f' font-size='11' fill='#555'>", x,
            y);
    esc(p->f, text);
    fputs("</text>\n", p->f);
}

/* See bench_svg.h. */
int svg_close(svg_plot *p)
{
    if (!p->f)
        return -1;
    fputs("</svg>\n", p->f);
    int rc = ferror(p->f) ? -1 : 0;
    if (fclose(p->f))
        rc = -1;
    p->f = NULL;
    return rc;
}
