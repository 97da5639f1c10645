/* RFC 3339 timestamps (the health log's first field, certificate expiry,
 * reports): the one formatter and parser, on a proleptic Gregorian
 * calendar in UTC, independent of the time zone. */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rfc3339.h"

#define MS_PER_DAY (86400LL * 1000)

/* Floor division, for times before 1970. */
static int64_t
floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* ---- Calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : mdays[m - 1];
}

/* Exactly n digits at *p. */
static bool
take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
take_char(const char **p, const char *set)
{
	if (**p == '\0' || strchr(set, **p) == NULL)
		return false;
	(*p)++;
	return true;
}

int
rfc3339_parse(const char *text, int64_t *ms)
{
	const char *p = text;
	int y, mo, d, h, mi, s, frac = 0, oh = 0, om = 0, sign = 0;
	int64_t days, v;

	if (!take_digits(&p, 4, &y) || !take_char(&p, "-") ||
	    !take_digits(&p, 2, &mo) || !take_char(&p, "-") ||
	    !take_digits(&p, 2, &d) || !take_char(&p, "Tt") ||
	    !take_digits(&p, 2, &h) || !take_char(&p, ":") ||
	    !take_digits(&p, 2, &mi) || !take_char(&p, ":") ||
	    !take_digits(&p, 2, &s))
		return -1;
	if (*p == '.') {
		int n = 0;

		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++, n++)
			if (n < 3)
				frac = frac * 10 + (*p - '0');
		for (; n < 3; n++)
			frac *= 10;
	}
	if (take_char(&p, "Zz")) {
		sign = 0;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") ||
		    !take_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || s > 60)
		return -1;
	if (s == 60) /* leap second: count it as the last of the minute */
		s = 59;
	days = days_from_civil(y, mo, d);
	v = ((days * 24 + h) * 60 + mi) * 60 + s;
	v -= (int64_t)sign * (oh * 3600 + om * 60);
	*ms = v * 1000 + frac;
	return 0;
}

void
rfc3339_format(int64_t ms, bool with_ms, char *buf, size_t len)
{
	int64_t days = floordiv(ms, MS_PER_DAY), rem, y;
	int m, d;

	rem = ms - days * MS_PER_DAY;
	civil_from_days(days, &y, &m, &d);
	if (with_ms)
		snprintf(buf, len,
		         "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m,
		         d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
		         (int)(rem / 1000 % 60), (int)(rem % 1000));
	else
		snprintf(buf, len, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02dZ", y,
		         m, d, (int)(rem / 3600000), (int)(rem / 60000 % 60),
		         (int)(rem / 1000 % 60));
}

void
rfc3339_format_text(int64_t ms, char *buf, size_t len)
{
	int64_t days = floordiv(ms, MS_PER_DAY), rem, y;
	int m, d;

	rem = ms - days * MS_PER_DAY;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "%04" PRId64 "-%02d-%02d %02d:%02d:%02d", y, m, d,
	         (int)(rem / 3600000), (int)(rem / 60000 % 60),
	         (int)(rem / 1000 % 60));
}

int64_t
rfc3339_days(int64_t ms)
{
	return floordiv(ms, MS_PER_DAY);
}
