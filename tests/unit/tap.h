/* A tiny TAP-style test harness: each check prints "ok N" or "not ok N - where"; main returns the
 * failure count (0 = pass). */
#ifndef PP_TAP_H
#define PP_TAP_H

#include <stddef.h>
#include <stdint.h>

extern int tap_failures;
extern int tap_count;

void tap_check(int cond, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
int tap_done(void);

#define CHECK(cond) tap_check(!!(cond), __FILE__, __LINE__, "%s", #cond)
#define CHECKF(cond, ...) tap_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#endif
