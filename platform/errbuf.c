/* Error messages for people, and errno text. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <bx/platform.h>

int
bx_err(struct bx_errbuf *eb, int err, const char *fmt, ...)
{
	va_list ap;

	if (eb != NULL) {
		va_start(ap, fmt);
		vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
		va_end(ap);
	}
	return err > 0 ? -err : err;
}

const char *
bx_strerror(int err)
{
	static __thread char buf[128];

	if (err < 0) {
		err = -err;
	}
	/* GNU strerror_r returns a pointer that may or may not be buf. */
	return strerror_r(err, buf, sizeof(buf));
}
