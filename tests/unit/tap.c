#include "tap.h"

#include <stdarg.h>
#include <stdio.h>

int tap_failures;
int tap_count;

void tap_check(int cond, const char *file, int line, const char *fmt, ...)
{
    tap_count++;
    if (cond)
        return;
    tap_failures++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "not ok %d - %s:%d: ", tap_count, file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

int tap_done(void)
{
    printf("%d checks, %d failed\n", tap_count, tap_failures);
    return tap_failures ? 1 : 0;
}
